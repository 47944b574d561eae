"""Speed scripts (run them as files); nothing in the project imports them."""
