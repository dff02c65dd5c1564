"""Publishing a phase's boards to a local folder (files.py); the GitHub client that commits
them in one commit is evaluator/clients/github.py."""
