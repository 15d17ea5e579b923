"""Reading roster_db in tests."""

import pandas as pd
import sqlalchemy as sa


def table(url, sql, **params) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        out = pd.read_sql(sa.text(sql), c, params=params)
    engine.dispose()
    return out
