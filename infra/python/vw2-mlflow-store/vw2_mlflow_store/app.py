"""vw2's MLflow server app: MLflow's own app with a faster log-batch view (see `log_batch_view`).

Loaded through MLflow's documented `mlflow.app` entry point (`mlflow server --app-name vw2-fast-log-batch`),
the mechanism MLflow's basic-auth app uses, and built the same way: the stock Flask app, changed in place,
wrapped by MLflow's `create_fastapi_app` when the server runs under uvicorn (the default), else returned
as is (gunicorn / waitress). Every route, hook and middleware is MLflow's; only the view function of
POST runs/log-batch differs.
"""

__all__ = ["create_app"]


def create_app(app=None):
    """The app factory `mlflow server` hands to uvicorn (`--factory`) or gunicorn/waitress."""
    # imported on call: `mlflow server` imports this module in its CLI process just to see it is a factory
    import logging

    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as mlflow_app

    from vw2_mlflow_store.log_batch_view import install

    flask_app = mlflow_app if app is None else app
    install(flask_app)
    logging.getLogger("vw2_mlflow_store").warning("vw2: MLflow app with the fast log-batch view")
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app
