"""Autofix: plans the rules attach to their reports (`plan`), the node builders they use
(`builders`), the rounds that apply and verify them (`apply`), and safe writes (`files`)."""
