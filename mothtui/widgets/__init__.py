"""Widgets shared by the screens (plots, panels)."""
