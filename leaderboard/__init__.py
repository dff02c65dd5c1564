"""probeboard's leaderboard: scores -> standings -> boards."""
