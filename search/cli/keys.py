"""``catalens keys``: create, list and remove the API keys a service accepts (stored hashed, shown once)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands
    from catalens.search.security import KeysFile


def register_keys(commands: Commands) -> None:
    """Add ``catalens keys add|list|remove``."""
    keys = commands.add_parser("keys", help="create, list and remove API keys of a service")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION", parser_class=type(keys))

    add = actions.add_parser("add", help="create a key: printed once, only its hash is stored")
    _where(add)
    add.add_argument(
        "--scope",
        required=True,
        choices=("read", "write"),
        help="read: search, items, classify; write: also add and delete items",
    )
    add.add_argument("--name", help="a name to list and remove it by (default SCOPE-HASHPREFIX)")
    add.set_defaults(handler=run_keys_add)

    listing = actions.add_parser("list", help="list the stored keys (names, scopes, ids; never the keys)")
    _where(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_keys_list)

    remove = actions.add_parser("remove", help="remove a key by name or id; a running service drops it at once")
    _where(remove)
    remove.add_argument("name", help="the key's name or id (as `catalens keys list` shows)")
    remove.set_defaults(handler=run_keys_remove)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="the store whose keys file (STORE/keys.json) to use")
    where.add_argument("--keys-file", help="a keys file elsewhere (what CATALENS_KEYS_FILE names for the service)")


def _file(args: argparse.Namespace) -> KeysFile:
    from catalens.search.security import KeysFile, default_keys_path

    return KeysFile(Path(args.keys_file) if args.keys_file else default_keys_path(Path(args.store)))


def run_keys_add(args: argparse.Namespace) -> int:
    """Create a key and print it once, with the entry ``CATALENS_API_KEYS`` would take instead of the file."""
    keys_file = _file(args)
    secret, record = keys_file.add(args.scope, args.name)
    print(secret)
    print(
        f"Added {record.scope} key {record.name!r} (id {record.id}) to {keys_file.path}. This is the only time "
        "the key is shown: keep it now. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
    )
    print(f"For CATALENS_API_KEYS instead of the file: {record.scope}:{record.sha256}:{record.name}")
    return EXIT_OK


def run_keys_list(args: argparse.Namespace) -> int:
    """List the stored keys: names, scopes, ids and creation times."""
    from catalens.search.cli.render import emit_json

    keys_file = _file(args)
    keys = keys_file.load()
    if args.json:
        emit_json([{"name": k.name, "scope": k.scope, "id": k.id, "created_at": k.created_at} for k in keys])
        return EXIT_OK
    if not keys:
        print(f"No keys in {keys_file.path} (add one with `catalens keys add --scope read|write`)")
        return EXIT_OK
    print(f"{'name':<24} {'scope':<6} {'id':<12} created")
    for k in keys:
        print(f"{k.name:<24} {k.scope:<6} {k.id:<12} {k.created_at or '-'}")
    return EXIT_OK


def run_keys_remove(args: argparse.Namespace) -> int:
    """Remove one key by name or id."""
    keys_file = _file(args)
    removed = keys_file.remove(args.name)
    print(f"Removed {removed.scope} key {removed.name!r} (id {removed.id}) from {keys_file.path}")
    return EXIT_OK
