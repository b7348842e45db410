"""Fixed-step IMEX Runge-Kutta integration of the moth model over one wing stroke, in JAX.

Why IMEX: the model's only stiffness is the joint damper acting through the mass matrix, one
real eigenvalue -c B^T M^-1 B of about -2.6e4 /s (up to -6.5e4 /s) at s = 1, growing as s^-5
for smaller bodies; every other eigenvalue is below ~60 /s. Explicit RK4 needs ~800 steps
per 0.02 s just to stay stable on that one decaying mode. An additive (IMEX) Runge-Kutta
method integrates the damper term implicitly and everything else explicitly: the implicit
stage equation is linear and rank-one, u = R - h a_ii c (B^T u) M(q_i)^-1 B, and it has the
closed-form solution B^T u = B^T R / (1 + h a_ii c B^T M^-1 B) (Sherman-Morrison) with the
mass matrix of the stage itself, so there is no Newton iteration and no Jacobian. The
implicit half is L-stable and stiffly accurate, so steps are chosen for accuracy on the slow
dynamics alone. We use Kennedy & Carpenter's ARK4(3)6L[2]SA (Appl. Numer. Math. 44, 2003),
order 4 with an embedded order-3 solution, 6 stages: docs/sim.md has the measured error
versus steps that picked it and DEFAULT_STEPS.

Validity ("integrator accepted"): the embedded pair gives a local error estimate every step;
a sample is accepted when its state is finite and the sum over steps of the largest local
error estimate, each component divided by its range at the body scale (`error_scale(s)`: the
ranges grow ~60x from s = 1 to s = 0.3), stays below `ERROR_TOLERANCE`. The estimate is that of
the order-3 companion, so it over-states the error of the order-4 result that is stored: a
conservative check at the cost of one extra weighted sum per step. It sees truncation, not
rounding, so rounding is kept out of float32 results instead (compensated sums, reduced angles:
`integrate_block`), and what the check accepts is within 1e-4 of range from s = 0.3 to 3.

Layout: state (8, B) and controls (3, B) per block, one array per component (structure of
arrays), a `lax.scan` over steps, and `lax.map` over cache-sized blocks of samples.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.sim import model
from core.sim.model import DAMPER_C, T_END, BodyParams


class Tableau(NamedTuple):
    """An additive Runge-Kutta pair: explicit A, implicit (ESDIRK) A, shared weights b."""

    name: str
    order: int
    a_explicit: tuple      # s x s, strictly lower triangular
    a_implicit: tuple      # s x s, lower triangular, first stage explicit
    b: tuple               # weights of the solution
    b_error: tuple         # b - b_embedded: the local error estimate's weights


def _tableau(name, order, a_exp_rows, a_imp_rows, gamma, b, b_embedded) -> Tableau:
    stages = len(b)
    a_exp = np.zeros((stages, stages))
    a_imp = np.zeros((stages, stages))
    for i, row in enumerate(a_exp_rows, start=1):
        a_exp[i, :len(row)] = row
    for i, row in enumerate(a_imp_rows, start=1):
        a_imp[i, :len(row)] = row
        a_imp[i, i] = gamma
    b = np.asarray(b, dtype=np.float64)
    err = b - np.asarray(b_embedded, dtype=np.float64)
    return Tableau(name, order, tuple(map(tuple, a_exp)), tuple(map(tuple, a_imp)), tuple(b), tuple(err))


_G4 = 0.25
_B4 = (82889 / 524892, 0.0, 15625 / 83664, 69875 / 102672, -2260 / 8211, _G4)
#: Kennedy & Carpenter ARK4(3)6L[2]SA: order 4 (embedded 3), L-stable, stiffly accurate implicit part.
ARK4 = _tableau(
    "ARK4(3)6L[2]SA", 4,
    a_exp_rows=[
        (0.5,),
        (13861 / 62500, 6889 / 62500),
        (-116923316275 / 2393684061468, -2731218467317 / 15368042101831, 9408046702089 / 11113171139209),
        (-451086348788 / 2902428689909, -2682348792572 / 7519795681897, 12662868775082 / 11960479115383,
         3355817975965 / 11060851509271),
        (647845179188 / 3216320057751, 73281519250 / 8382639484533, 552539513391 / 3454668386233,
         3354512671639 / 8306763924573, 4040 / 17871),
    ],
    a_imp_rows=[
        (_G4,),
        (8611 / 62500, -1743 / 31250),
        (5012029 / 34652500, -654441 / 2922500, 174375 / 388108),
        (15267082809 / 155376265600, -71443401 / 120774400, 730878875 / 902184768, 2285395 / 8070912),
        _B4[:5],
    ],
    gamma=_G4, b=_B4,
    b_embedded=(4586570599 / 29645900160, 0.0, 178811875 / 945068544, 814220225 / 1159782912,
                -3700637 / 11593932, 61727 / 225920),
)

_G3 = 1767732205903 / 4055673282236
_B3 = (1471266399579 / 7840856788654, -4482444167858 / 7529755066697, 11266239266428 / 11593286722821, _G3)
#: Kennedy & Carpenter ARK3(2)4L[2]SA: order 3 (embedded 2), 4 stages. Kept for comparison.
ARK3 = _tableau(
    "ARK3(2)4L[2]SA", 3,
    a_exp_rows=[
        (2 * _G3,),
        (5535828885825 / 10492691773637, 788022342437 / 10882634858940),
        (6485989280629 / 16251701735622, -4246266847089 / 9704473918619, 10755448449292 / 10357097424841),
    ],
    a_imp_rows=[
        (_G3,),
        (2746238789719 / 10658868560708, -640167445237 / 6845629431997),
        _B3[:3],
    ],
    gamma=_G3, b=_B3,
    b_embedded=(2756255671327 / 12835298489170, -10771552573575 / 22201958757719,
                9247589265047 / 10645013368117, 2193209047091 / 5459859503100),
)

TABLEAUX = {"ark4": ARK4, "ark3": ARK3}
DEFAULT_METHOD = "ark4"
#: Equal steps per wing stroke of the default method (docs/sim.md: error vs steps on the reference).
DEFAULT_STEPS = 80
#: Smaller bodies fly faster strokes under the same sampled forces (rates up to ~9,000 rad/s at
#: s = 0.5 and ~60,000 at s = 0.3 against ~640 at s = 1), so below s = 1 the equal steps grow as
#: s^-3 (s^-2.5 left 8 % of strokes at s = 0.3 over 1e-4 of range: docs/sim.md), capped.
SMALL_BODY_EXPONENT = 3.0
MAX_STEPS = 4000


def steps_for_scale(scale: float) -> int:
    """Equal steps per stroke at body scale `scale`: DEFAULT_STEPS for s >= 1, more below."""
    return min(MAX_STEPS, int(np.ceil(DEFAULT_STEPS * max(1.0, 1.0 / scale) ** SMALL_BODY_EXPONENT)))


#: Geometric start (first step h0 * s^5, growth ratio): resolves the initial relaxation of the
#: damper mode (time constant 1/(c gamma), 15-40 us at s = 1, scaling as s^5), which uniform
#: steps many times longer than it integrate with order reduction (docs/sim.md).
DEFAULT_GRADING = (1e-6, 2.0)
#: Samples per vectorised block on a CPU device (measured on the 2-core CPU, docs/sim.md:
#: 1,024 and 2,048 -> 17.8, 4,096 -> 18.8, 8,192 -> 24 us of CPU per trajectory: a block's
#: intermediates then stay in the core's caches).
DEFAULT_BLOCK = 2048
#: Error scale of each state component for the validity check at s = 1: about its range over
#: random strokes (positions cm, velocities cm/s, angles rad, rates rad/s). `error_scale(s)`.
ERROR_SCALE = (65.0, 3600.0, 64.0, 3500.0, 12.0, 640.0, 11.0, 650.0)
#: The range of each state component over random strokes (model.md sampling) at body scale s:
#: smaller bodies turn much faster under the same forces (angles of ~670 rad and rates of
#: ~6e4 rad/s at s = 0.3), so the validity check judges each stroke against the ranges of its
#: own scale. Measured (docs/sim.md: 1,024 strokes per scale, float64), two significant digits.
RANGE_BY_SCALE = {
    0.3: (150.0, 25000.0, 130.0, 25000.0, 670.0, 59000.0, 670.0, 59000.0),
    0.5: (80.0, 9300.0, 80.0, 7700.0, 97.0, 9200.0, 99.0, 9200.0),
    0.7: (72.0, 4500.0, 70.0, 4600.0, 29.0, 2500.0, 29.0, 2500.0),
    1.0: ERROR_SCALE,
    1.5: (61.0, 3100.0, 61.0, 3100.0, 7.8, 160.0, 7.3, 170.0),
    2.0: (60.0, 3100.0, 60.0, 3000.0, 7.2, 81.0, 6.9, 85.0),
    3.0: (60.0, 3000.0, 60.0, 3000.0, 6.8, 79.0, 6.9, 60.0),
}
#: Largest accepted accumulated local-error estimate, as a fraction of `error_scale(s)`. The
#: estimate (order-3 companion, summed over steps) over-states the true error of the stored
#: order-4 result 2-200x where that error is above 1e-5 of range (docs/sim.md), so 3e-3 keeps
#: every accepted stroke within 1e-4 of range at s = 0.3 to 3 while rejecting none at s >= 0.5.
ERROR_TOLERANCE = 3e-3


def error_scale(scale: float) -> tuple[float, ...]:
    """Each state component's range at body scale `scale`: RANGE_BY_SCALE interpolated in log-log
    (held at the end values outside 0.3..3, where the steps resolve less or far more than needed)."""
    table = sorted(RANGE_BY_SCALE)
    s = min(max(float(scale), table[0]), table[-1])
    x = np.log(table)
    values = np.log(np.asarray([RANGE_BY_SCALE[t] for t in table]))
    return tuple(float(np.exp(np.interp(np.log(s), x, values[:, k]))) for k in range(8))


def _imex_step(p: BodyParams, tab: Tableau, h, state, ctl: model.Controls, twist_turns=0.0):
    """One ARK step of size h for a block: returns (increment tuple, local error tuple).

    The caller adds the increment to the state (compensated, `_accumulate`); `twist_turns` are
    the whole turns of phi - theta that the reduced angles of `state` leave out.
    """
    stages = len(tab.b)
    x0, xd0, y0, yd0, t0, td0, p0, pd0 = state
    pos0, vel0 = (x0, y0, t0, p0), (xd0, yd0, td0, pd0)
    # per stage: velocities (= position slopes) and both accelerations
    vels: list[tuple] = []
    acc_e: list[tuple] = []
    acc_i: list[tuple] = []
    for i in range(stages):
        ae, ai = tab.a_explicit[i], tab.a_implicit[i]
        pos = tuple(q + h * sum(ae[j] * vels[j][k] for j in range(i) if ae[j])
                    if i else q for k, q in enumerate(pos0))
        rhs = tuple(u + h * sum(ae[j] * acc_e[j][k] + ai[j] * acc_i[j][k] for j in range(i))
                    if i else u for k, u in enumerate(vel0))
        fr = model.frame(p, pos[2], pos[3])
        if ai[i]:
            # Implicit damper: u = R - h a_ii c w M^-1 B with w = B^T u, solved in closed form.
            hc = h * ai[i] * DAMPER_C
            w = (rhs[3] - rhs[2]) / (1.0 + hc * fr.gamma)
            vel = (rhs[0] - hc * w * fr.vx, rhs[1] - hc * w * fr.vy,
                   rhs[2] - hc * w * fr.vtheta, rhs[3] - hc * w * fr.vphi)
        else:
            vel = rhs
            w = vel[3] - vel[2]
        damp = -DAMPER_C * w
        acc_i.append((damp * fr.vx, damp * fr.vy, damp * fr.vtheta, damp * fr.vphi))
        acc_e.append(model.accelerations(p, fr, ctl, pos[2], pos[3], *vel, twist_turns=twist_turns))
        vels.append(vel)

    def combine(weights, base):
        new_pos = tuple((base[0][k] if base else 0.0) + h * sum(weights[j] * vels[j][k]
                        for j in range(stages) if weights[j]) for k in range(4))
        new_vel = tuple((base[1][k] if base else 0.0) + h * sum(weights[j] * (acc_e[j][k] + acc_i[j][k])
                        for j in range(stages) if weights[j]) for k in range(4))
        return new_pos, new_vel

    (x, y, t, ph), (xd, yd, td, pd) = combine(tab.b, None)
    (ex, ey, et, ep), (exd, eyd, etd, epd) = combine(tab.b_error, None)
    return (x, xd, y, yd, t, td, ph, pd), (ex, exd, ey, eyd, et, etd, ep, epd)


def _rk4_step(p: BodyParams, h, state, controls):
    """Classical RK4 on the full model: the explicit baseline the IMEX scheme is measured against."""
    y = jnp.stack(state)
    f = lambda z: model.full_rhs(p, z, controls)  # noqa: E731
    k1 = f(y)
    k2 = f(y + 0.5 * h * k1)
    k3 = f(y + 0.5 * h * k2)
    k4 = f(y + h * k3)
    increment = (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return tuple(increment), tuple(jnp.zeros_like(increment))


def step_sizes(steps: int, *, t_end: float = T_END, scale: float = 1.0, grading=None) -> np.ndarray:
    """Step sizes over [0, t_end]: `steps` equal steps, or a geometric start then equal steps.

    grading = (h0, ratio): start at h0 * scale^5 and grow by `ratio` until the equal step size
    is reached, then finish with equal steps (the count chosen so that the total is t_end).
    """
    if grading is None:
        return np.full(steps, t_end / steps)
    h0, ratio = grading
    big = t_end / steps
    hs = []
    h = h0 * scale**5
    while h < big:
        hs.append(h)
        h *= ratio
    rest = t_end - sum(hs)
    n = max(1, int(np.ceil(rest / big - 1e-9)))
    return np.asarray(hs + [rest / n] * n)


_TWO_PI = 2 * np.pi
ANGLES = (4, 6)   # theta, phi in the state
#: State components updated by compensated sums: the angles and rates, whose rounding the
#: trajectory amplifies (positions and velocities plain: compensating them measured no better).
COMPENSATED = (4, 5, 6, 7)


def _accumulate(y, increment, lost):
    """Compensated (Kahan) y + increment: returns (sum, what the sum's rounding lost, negated).

    Hundreds to thousands of small steps added to a large state (angles of hundreds of radians,
    rates of 1e4 rad/s at s = 0.3) lose a rounding error per step in float32; carrying the lost
    low part into the next step keeps the sum as accurate as one rounding.
    """
    corrected = increment - lost
    total = y + corrected
    return total, (total - y) - corrected


def integrate_block(p: BodyParams, state, controls, *, steps: int = DEFAULT_STEPS,
                    method: str = DEFAULT_METHOD, t_end: float = T_END, grading=DEFAULT_GRADING,
                    compensated: bool = True):
    """Integrate one block: state (8, B), controls (3, B) -> (final (8, B), error estimate (B,)).

    The error estimate is the sum over steps of max_k |local error_k| / error_scale(s)_k, the
    accumulated local error as a fraction of each component's range at this body scale (zero for
    "rk4", which has no embedded pair).

    `compensated` (default; the ARK methods): the two angles are carried reduced to [-pi, pi]
    with their whole turns apart (sin, cos and the stage values then round at 2 pi, not at
    hundreds of radians; the spring sees the turns of phi - theta), and the updates of angles and
    rates are compensated sums. Off: the plain update, kept to measure what rounding costs (docs/sim.md).
    """
    dtype = state.dtype
    if method == "rk4":
        grading = None  # the explicit baseline as measured in docs/sim.md: equal steps
        compensated = False
    hs = jnp.asarray(step_sizes(steps, t_end=t_end, scale=p.scale, grading=grading), dtype)
    weight = [jnp.asarray(1.0 / w, dtype) for w in error_scale(p.scale)]
    tab = TABLEAUX.get(method)
    ctl = model.controls(p, *controls)
    two_pi = jnp.asarray(_TWO_PI, dtype)
    # What `two_pi` leaves out of 2 pi (in this dtype): a reduction by one turn owes it back.
    two_pi_rest = jnp.asarray(_TWO_PI - float(np.asarray(_TWO_PI, dtype)), dtype)

    def body(carry, h):
        st, lost, turns, err = carry
        if method == "rk4":
            increment, local = _rk4_step(p, h, st, controls)
        else:
            assert tab is not None  # a method of TABLEAUX (core.sim.api checks it)
            increment, local = _imex_step(p, tab, h, st, ctl, turns[1] - turns[0] if compensated else 0.0)
        if compensated:
            sums, owed = zip(*(_accumulate(st[k], increment[k], lost[k]) if k in COMPENSATED
                               else (st[k] + increment[k], lost[k]) for k in range(8)))
            new_l, lost_l, turns_l = list(sums), list(owed), list(turns)
            for j, k in enumerate(ANGLES):
                # Reduce by whole turns; |angle| < 4 pi, so angle - n 2pi is exact (Sterbenz) and
                # only 2 pi's own rounding is owed, carried as a compensation.
                n = jnp.round(new_l[k] / two_pi)
                new_l[k] = new_l[k] - n * two_pi
                lost_l[k] = lost_l[k] + n * two_pi_rest
                turns_l[j] = turns_l[j] + n
            new, lost, turns = tuple(new_l), tuple(lost_l), tuple(turns_l)
        else:
            new = tuple(st[k] + increment[k] for k in range(8))
        worst = jnp.abs(local[0]) * weight[0]
        for k in range(1, 8):
            worst = jnp.maximum(worst, jnp.abs(local[k]) * weight[k])
        return (new, lost, turns, err + worst), None

    zero = jnp.zeros_like(state[0])
    start, owed = [state[k] for k in range(8)], [zero] * 8
    turns: tuple[jax.Array, ...] = (zero, zero)
    if compensated:
        turns = tuple(jnp.round(state[k] / two_pi) for k in ANGLES)
        for j, k in enumerate(ANGLES):
            start[k] = state[k] - turns[j] * two_pi
            owed[k] = turns[j] * two_pi_rest   # the reduction took 2 pi's rounding too much
    init = (tuple(start), tuple(owed), turns, zero)
    (end, lost, turns, err), _ = jax.lax.scan(body, init, hs)
    final = list(end)
    for j, k in enumerate(ANGLES):
        # Turns back on: the one rounding of the stored angle (plus what the compensation still owes).
        final[k] = (final[k] - lost[k]) + turns[j] * two_pi + turns[j] * two_pi_rest
    return jnp.stack(final), err
