"""What a module says of the database its sessions talk to, where a rule's verdict depends
on it (SL007: whether a failed statement aborts the transaction)."""

import libcst as cst

from sessionlint.analysis.tree import walk

# Words of the module's strings and names that say which database it talks to.
_OTHER_DIALECTS = ("sqlite", "mysql", "mariadb", "singlestore", "tidb")
_POSTGRES = ("postgres", "psycopg", "asyncpg", "cockroach", "pg8000")


def statements_abort_transactions(module: cst.Module) -> bool:
    """Whether a failed statement (not a flush) may leave this module's sessions in an
    aborted transaction. Not when the module names only databases where it does not (SQLite,
    MySQL and its kin roll back just the statement: corpus review, calibre-web's SQLite
    library, phidata's SingleStore and langchain's TiDB stores) or runs its sessions in
    autocommit mode (`create_session()`, `autocommit=True`: each statement is its own
    transaction; corpus review: pycsw). Fixture: SL007/failed_statement_on_other_databases.py"""
    other = postgres = False
    for node in walk(module):
        if type(node) is cst.SimpleString or type(node) is cst.Name:
            text = node.value.lower()
            if type(node) is cst.Name and text == "create_session":
                return False
            other = other or any(word in text for word in _OTHER_DIALECTS)
            postgres = postgres or any(word in text for word in _POSTGRES)
        elif type(node) is cst.Arg and node.keyword is not None and node.keyword.value == "autocommit":
            if isinstance(node.value, cst.Name) and node.value.value == "True":
                return False
    return postgres or not other
