"""Adaptations of verl 0.9.1 that the recipe needs and verl has no switch for.

verl imports these in its own processes (``model.external_lib``): the FSDP engines
that freeze the vision tower (:mod:`.freeze_vision`), the ``grpo_masked`` advantage
estimator (:mod:`.advantage`), and the module that loads both (:mod:`.verl_plugins`).
"""
