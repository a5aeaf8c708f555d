"""Every component's settings section, as typed models: the settings contract, like the catalog is the tables'.

They live in the foundation so ``shopml.settings`` composes them without importing the components;
each component reads its section (``settings.recommend``, ``settings.forecast``, ...).
"""
