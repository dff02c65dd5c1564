"""Publishers: a phase's boards to a local folder (files.py) and to GitHub in one commit
(github.py)."""
