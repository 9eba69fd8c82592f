"""Our port of ImageBind (vision, audio, text towers), loading the official checkpoint."""
