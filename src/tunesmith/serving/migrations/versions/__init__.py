"""One file per schema revision, applied in order by tunesmith.serving.database.upgrade."""
