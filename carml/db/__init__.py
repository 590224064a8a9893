"""The database: SQLAlchemy 2 models (`models`), engines and sessions (`session`). Migrations are in migrations/."""
