"""The two-body hawkmoth model of docs/model.md: body parameters and the split right-hand side.

The equations are written for the integrator in `integrate.py`, which treats the joint damper
implicitly and everything else explicitly (an IMEX scheme). So this module provides, per state:

- `accelerations`: M(q)^-1 g(q, qd), the accelerations from every force *except* the damper;
- `frame`: M(q)^-1 B with B = (0, 0, -1, 1), the direction through which the damper acts. The damper
  force is -c B (B^T qd) with B^T qd = phid - thetad, so its acceleration is -c (B^T qd) M^-1 B:
  a rank-one term whose one eigenvalue, -c B^T M^-1 B (about -2.6e4 /s at s = 1, scaling as
  s^-5), is the whole stiffness of the system.

Everything is written elementwise on arrays of samples (structure of arrays: each state
component is its own array), so it vectorises on CPU and GPU without any per-sample loop, and
the 4x4 mass matrix is solved in closed form through its 2x2 Schur complement (a general
`jnp.linalg.solve` per sample is several times slower under vectorisation).

Pure jax.numpy; no I/O. Parameters are plain Python floats so they fold into the compiled code.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

#: Duration of one wing stroke (s): one sample integrates t = 0 -> T_END.
T_END = 0.02
#: State order (model.md): joint position and velocity, head-thorax and abdomen angles and rates.
STATE_NAMES = ("x", "xd", "y", "yd", "theta", "thetad", "phi", "phid")
CONTROL_NAMES = ("F", "alpha", "tau")

RHO_AIR = 0.00118   # g/cm^3
MU_AIR = 0.000186   # g/(cm s)
GRAVITY = 980.0     # cm/s^2
SPRING_K = 23000.0
DAMPER_C = 14075.8
REST_ANGLE = 0.0    # beta_R


class BodyParams(NamedTuple):
    """Derived constants of the moth at one body scale (cgs units), as Python floats."""

    scale: float
    m1: float          # head-thorax mass
    m2: float          # abdomen mass
    d1: float          # I1 + m1 L1^2: head-thorax inertia about the joint
    d2: float          # I2 + m2 L2^2
    A1: float          # m1 L1
    A2: float          # m2 L2
    L3: float          # joint -> point where the wing force acts
    drag_linear: float     # Stokes part of the drag: sum_i 1/2 rho S_i 24 mu / (rho 2 b_i)
    drag_const: float      # sum_i 1/2 rho S_i 0.4
    drag_h: float          # 1/2 rho S_head 6
    drag_b: float          # 1/2 rho S_butt 6
    re_h: float            # Re per unit speed, head: rho 2 b_head / mu
    re_b: float            # Re per unit speed, abdomen


def body_params(scale: float = 1.0) -> BodyParams:
    """Parameters of model.md at body scale `scale`: lengths scale, densities and K, c, g do not."""
    s = float(scale)
    b_h, a_h, b_b, a_b = 0.5 * s, 0.9 * s, 0.75 * s, 1.9 * s
    rho_h, rho_b = 0.9, 0.4
    L1, L2, L3 = 0.9 * s, 1.9 * s, 0.75 * s
    m1 = rho_h * (4.0 / 3.0) * math.pi * b_h**2 * a_h
    m2 = rho_b * (4.0 / 3.0) * math.pi * b_b**2 * a_b
    I1 = 0.2 * m1 * b_h**2 * (1.0 + (a_h / b_h) ** 2)
    I2 = 0.2 * m2 * b_b**2 * (1.0 + (a_b / b_b) ** 2)
    S_h, S_b = math.pi * b_h**2, math.pi * b_b**2
    half_rho = 0.5 * RHO_AIR
    # Cd |v| v with Cd = 24/Re + 6/(1+sqrt(Re)) + 0.4 and Re = rho |v| 2b / mu: the 24/Re term
    # times |v| v is linear in v (24 mu v / (rho 2 b)), written so as to stay finite at v = 0.
    drag_linear = sum(half_rho * S * 24.0 * MU_AIR / (RHO_AIR * 2.0 * b) for S, b in ((S_h, b_h), (S_b, b_b)))
    return BodyParams(
        scale=s, m1=m1, m2=m2, d1=I1 + m1 * L1**2, d2=I2 + m2 * L2**2, A1=m1 * L1, A2=m2 * L2, L3=L3,
        drag_linear=drag_linear, drag_const=half_rho * 0.4 * (S_h + S_b),
        drag_h=half_rho * 6.0 * S_h, drag_b=half_rho * 6.0 * S_b,
        re_h=RHO_AIR * 2.0 * b_h / MU_AIR, re_b=RHO_AIR * 2.0 * b_b / MU_AIR,
    )


def drag(p: BodyParams, xd, yd):
    """Aerodynamic drag (x, y): 1/2 rho sum_i S_i Cd_i |xd| xd (and the same with yd).

    Cd_i depends on the Reynolds number of the *speed* |v| = hypot(xd, yd), as in the reference
    solution (a per-component Re disagrees with it by ~5e-4 of range). The Stokes term 24/Re
    times |xd| xd is 24 mu/(rho 2 b) |xd| xd / |v|, bounded by |xd|: written with the ratio
    |xd|/|v| set to 0 at v = 0 so that it stays finite there instead of 0 * inf = NaN.
    """
    speed = jnp.sqrt(xd * xd + yd * yd)
    safe_speed = jnp.where(speed > 0, speed, 1.0)
    quadratic = (p.drag_const + p.drag_h / (1.0 + jnp.sqrt(p.re_h * speed))
                 + p.drag_b / (1.0 + jnp.sqrt(p.re_b * speed)))
    abs_x, abs_y = jnp.abs(xd), jnp.abs(yd)
    inv_speed = 1.0 / safe_speed
    # |xd| / |v| <= 1, so no intermediate overflows even for denormal speeds.
    drag_x = (p.drag_linear * (abs_x * inv_speed) + quadratic * abs_x) * xd
    drag_y = (p.drag_linear * (abs_y * inv_speed) + quadratic * abs_y) * yd
    return drag_x, drag_y


# sin and cos of pi/2-reduced arguments (Cephes sinf/cosf minimax polynomials on [-pi/4, pi/4];
# pi/2 split in three parts so that k * _PIO2_1 is exact: Cody-Waite reduction).
_PIO2_1, _PIO2_2, _PIO2_3 = 1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8
_SIN = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)


def sincos(x):
    """(sin x, cos x). float32: one shared range reduction and two short polynomials.

    XLA's CPU sin/cos inside the integrator's fused kernels cost ~90 ns each and were 80 % of
    the run time; this costs a few ns and is accurate to ~1 ulp for |x| < 1e4 rad. float64
    keeps jnp.sin/jnp.cos (float64 is the accuracy mode, not the speed mode).
    """
    if x.dtype != jnp.float32:
        return jnp.sin(x), jnp.cos(x)
    k = jnp.round(x * (2.0 / math.pi))
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    z = r * r
    sin_r = ((_SIN[0] * z + _SIN[1]) * z + _SIN[2]) * z * r + r
    cos_r = ((_COS[0] * z + _COS[1]) * z + _COS[2]) * z * z - 0.5 * z + 1.0
    quadrant = k.astype(jnp.int32) & 3
    swap = (quadrant & 1) == 1
    sin_x = jnp.where(swap, cos_r, sin_r)
    cos_x = jnp.where(swap, sin_r, cos_r)
    sin_x = jnp.where(quadrant >= 2, -sin_x, sin_x)
    cos_x = jnp.where((quadrant == 1) | (quadrant == 2), -cos_x, cos_x)
    return sin_x, cos_x


class Frame(NamedTuple):
    """What depends on the angles only: trig, the Schur complement, and the damper direction."""

    sin_t: Array
    cos_t: Array
    sin_p: Array
    cos_p: Array
    s11: float
    s22: float
    s12: Array
    inv_det: Array
    vx: Array        # M^-1 B: acceleration per unit of (-damper force / c)
    vy: Array
    vtheta: Array
    vphi: Array
    gamma: Array     # B^T M^-1 B = vphi - vtheta > 0: the damper's eigenvalue is -c gamma


def frame(p: BodyParams, theta, phi) -> Frame:
    """Trig, Schur complement S = D - P^T P / m of the mass matrix, and M(q)^-1 B in closed form."""
    (sin_t, cos_t), (sin_p, cos_p) = sincos(theta), sincos(phi)
    m = p.m1 + p.m2
    inv_m = 1.0 / m   # Python floats: multiplying by constants instead of dividing per sample
    s11 = p.d1 - p.A1 * p.A1 / m
    s22 = p.d2 - p.A2 * p.A2 / m
    s12 = (-p.A1 * p.A2 * inv_m) * (cos_t * cos_p + sin_t * sin_p)
    inv_det = 1.0 / (s11 * s22 - s12 * s12)
    # S^-1 (-1, 1) is the angular part of M^-1 B; the translational part follows from row 1-2.
    bt = (-s22 - s12) * inv_det
    bp = (s12 + s11) * inv_det
    vx = (p.A1 * sin_t * bt + p.A2 * sin_p * bp) * inv_m
    vy = -(p.A1 * cos_t * bt + p.A2 * cos_p * bp) * inv_m
    return Frame(sin_t, cos_t, sin_p, cos_p, s11, s22, s12, inv_det, vx, vy, bt, bp, bp - bt)


class Controls(NamedTuple):
    """Per-sample constants of one wing stroke, precomputed once instead of at every stage."""

    f_cos: Array     # F cos(alpha)
    f_sin: Array     # F sin(alpha)
    torque_t: Array  # tau + F L3 sin(alpha): constant torque on the head-thorax
    tau: Array


def controls(p: BodyParams, force, alpha, tau) -> Controls:
    f_cos, f_sin = force * jnp.cos(alpha), force * jnp.sin(alpha)
    return Controls(f_cos, f_sin, tau + p.L3 * f_sin, tau)


def accelerations(p: BodyParams, fr: Frame, ctl: Controls, theta, phi, xd, yd, thetad, phid, twist_turns=0.0):
    """M(q)^-1 g(q, qd): accelerations from every force but the damper, (ax, ay, atheta, aphi).

    `twist_turns`: whole turns of phi - theta not included in `phi` and `theta` (the integrator
    carries the angles reduced to [-pi, pi] and their turns apart; only the spring sees turns).
    """
    m = p.m1 + p.m2
    inv_m = 1.0 / m
    spring = SPRING_K * (phi - theta + twist_turns * (2 * math.pi) - math.pi - REST_ANGLE)
    # F cos(alpha + theta) and F sin(alpha + theta) by the angle-sum identities.
    f_x = ctl.f_cos * fr.cos_t - ctl.f_sin * fr.sin_t
    f_y = ctl.f_sin * fr.cos_t + ctl.f_cos * fr.sin_t
    cent_t, cent_p = p.A1 * thetad * thetad, p.A2 * phid * phid
    drag_x, drag_y = drag(p, xd, yd)
    g_x = f_x - drag_x + cent_t * fr.cos_t + cent_p * fr.cos_p
    g_y = f_y - drag_y + cent_t * fr.sin_t + cent_p * fr.sin_p - m * GRAVITY
    g_t = ctl.torque_t - p.A1 * GRAVITY * fr.cos_t + spring
    g_p = -ctl.tau - p.A2 * GRAVITY * fr.cos_p - spring
    # Angular right-hand side of the Schur system: b - P^T a / m.
    r_t = g_t - (p.A1 * inv_m) * (fr.cos_t * g_y - fr.sin_t * g_x)
    r_p = g_p - (p.A2 * inv_m) * (fr.cos_p * g_y - fr.sin_p * g_x)
    at = (fr.s22 * r_t - fr.s12 * r_p) * fr.inv_det
    ap = (fr.s11 * r_p - fr.s12 * r_t) * fr.inv_det
    ax = (g_x + p.A1 * fr.sin_t * at + p.A2 * fr.sin_p * ap) * inv_m
    ay = (g_y - p.A1 * fr.cos_t * at - p.A2 * fr.cos_p * ap) * inv_m
    return ax, ay, at, ap


def full_rhs(p: BodyParams, state, controls_):
    """d(state)/dt of the whole model (damper included), for reference solvers and tests.

    `state` (8, ...) and `controls_` (3, ...) [F, alpha, tau] in model.md order; returns (8, ...).
    """
    x, xd, y, yd, theta, thetad, phi, phid = state
    fr = frame(p, theta, phi)
    ax, ay, at, ap = accelerations(p, fr, controls(p, *controls_), theta, phi, xd, yd, thetad, phid)
    damp = DAMPER_C * (phid - thetad)
    return jnp.stack([xd, ax - damp * fr.vx, yd, ay - damp * fr.vy,
                      thetad, at - damp * fr.vtheta, phid, ap - damp * fr.vphi])
