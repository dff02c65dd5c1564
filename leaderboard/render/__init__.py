"""Publish a `leaderboard.board.Board`: one module per output, imported by name.

- `escape`: untrusted team names made plain (no control or bidi characters) and escaped
  for Markdown or HTML; every output goes through it.
- `board_json`: leaderboard.json, schema ``probeboard.leaderboard/1`` (documented there).
- `markdown`: the README table between the probeboard markers.
- `html`: one self-contained page (standings, per-task heatmap, rank evolution); its
  stylesheet and script are the package files ``board.css`` and ``board.js``.
- `pictures`: PNG/SVG of the heatmap and the rank evolution (matplotlib).
- `text`: the terminal table of ``probeboard leaderboard``.
- `formatting` and `history`: number/time formatting and the rank-evolution series shared
  by several outputs.

In a hidden-task phase (`Board.hidden_tasks`) nothing published names a task or shows
per-task numbers or weights: JSON omits `tasks`, `weights` and `task_q`, the README never
has them, and the HTML page and pictures leave out the per-task heatmap.

The package imports nothing above `leaderboard` (no `evaluator.cli`, no daemon code).
"""
