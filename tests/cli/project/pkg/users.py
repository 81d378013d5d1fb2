from pkg.db import Maker


def count_users():
    db = Maker()
    return db.execute("select count(*) from users").scalar()


def find_user(user_id):
    db = Maker()
    row = db.get(dict, user_id)
    if row is None:
        raise LookupError(user_id)
    db.close()
    return row


def list_users():
    with Maker() as db:
        return db.execute("select * from users").all()
