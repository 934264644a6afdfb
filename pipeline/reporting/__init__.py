"""The run report's HTML: what it shows (`inputs`), its sections (`page`), its blocks (`html`)."""
