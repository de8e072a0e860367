"""Reading import files: JSONL or CSV in, checked records (or line-numbered problems) out.
No database here."""
