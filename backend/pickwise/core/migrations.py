from alembic import command
from alembic.config import Config

from pickwise.core.resources import MIGRATIONS_PACKAGE, package_folder


def alembic_config(database_url: str) -> Config:
    config = Config(str(package_folder(MIGRATIONS_PACKAGE) / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
