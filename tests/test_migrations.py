"""The migrations build the same schema as the models, and re-running them keeps data."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from blogapp import create_app
from blogapp.extensions import db
from blogapp.models import Post
from conftest import database_config


def test_init_db_creates_the_schema_of_the_models(tmp_path, pg_schema):
    app = create_app({"TESTING": True, "SECRET_KEY": "k", "SITE_URL": "http://blog.test",
                      **database_config(tmp_path, pg_schema)}, instance_path=str(tmp_path / "i"))
    runner = app.test_cli_runner()
    with app.app_context():
        db.drop_all()  # other tests leave their (emptied) tables in the PostgreSQL schema
    try:
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            assert inspect(db.engine).has_table("comment")
            with db.engine.connect() as conn:
                # The app's own filter (blogapp.search.not_the_index), as `flask db migrate` uses it.
                include_name = app.extensions["migrate"].configure_args["include_name"]
                diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}),
                                        db.metadata)
            assert diff == []
        assert runner.invoke(args=["seed-demo"]).exit_code == 0
        again = runner.invoke(args=["init-db"])
        assert again.exit_code == 0, again.output
        with app.app_context():
            assert db.session.scalar(select(func.count(Post.id))) == 5
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
            db.engine.dispose()
