"""Property-based fuzzing of every input surface, through the real charm and API client."""
