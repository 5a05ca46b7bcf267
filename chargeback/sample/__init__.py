"""The built-in sample workspace (Harborline Communications) and its data generator."""
