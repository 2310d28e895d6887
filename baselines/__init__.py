__doc__ = "Hashing methods of the hashbench comparison, one module per method."
