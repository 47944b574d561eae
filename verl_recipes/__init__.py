"""verl recipes for Gen-Searcher: SFT and multi-turn GRPO against the same MCP tool server.

* :mod:`verl_recipes.mcp_tool` -- a verl ``BaseTool`` bridge to any MCP server, plus
  the tool-config YAML generator and loader (verl's stock ``tool_agent`` loop can use it).
* :mod:`verl_recipes.agent_loop` -- the ``gen_searcher`` agent loop: the policy's episode
  state machine driven by verl's token-in/token-out generation.
* :mod:`verl_recipes.reward` -- ``compute_score``: render the answer, judge image and text.
* :mod:`verl_recipes.data` -- converters from the published SFT/RL data to verl parquet.
* :mod:`verl_recipes.launch` -- ``gen-searcher train sft|grpo``.
* :mod:`verl_recipes.cpu.cpu_platform` -- a CPU platform for verl (tests, smoke checks, ``--device cpu``).
* :mod:`verl_recipes.cpu.smoke` -- ``gen-searcher train smoke``: one command that checks a node.

verl and torch are imported lazily by the modules that need them, so importing this
package stays cheap.
"""
