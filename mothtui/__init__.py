"""mothtui's terminal UI (Textual). Never imports jax: the engine runs in its own process."""
