"""The project pass and what it knows: bytes of every file in, facts of the project out."""
