"""The data pipeline: make new SFT trajectories and RL prompts through the project's own tools.

Stages (one module each): :mod:`~synth.prompts`, :mod:`~synth.gate`,
:mod:`~synth.trajectories`, :mod:`~synth.ground_truth`, :mod:`~synth.judge`,
:mod:`~synth.select`, :mod:`~synth.calibrate`, :mod:`~synth.split`, :mod:`~synth.export`;
:mod:`~synth.pipeline` runs the paid ones as one async pipeline, :mod:`~synth.journal`
makes every stage resumable, :mod:`~synth.funnel` applies the decisions offline.
Tools are reached only over MCP, as the policy reaches them. See docs/data.md.
"""
