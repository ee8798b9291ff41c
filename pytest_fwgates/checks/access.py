"""Ready-made access-control checks, each measured on the host through testinfra.

- ``sshd``: the SSH daemon refuses root and password logins (``sshd -T``, the effective
  settings, or the config file when ``sshd -T`` cannot run).
- ``login_users``: the users with a login shell are exactly the allowed ones.
- ``sudo_members``: the members of the sudo group(s) are exactly the allowed ones.
- ``private_keys``: no private key under the given folders is readable by others.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .base import CheckError, Measurement
from .host import STRINGS, Expectations, HostCheck, as_list

_NO_LOGIN = re.compile(r"(/nologin|/false|/sync|/shutdown|/halt)$")


def _settings(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower().startswith("match "):
            break  # conditional blocks do not change the global defaults
        key, _, value = line.partition(" ")
        found.setdefault(key.lower(), value.strip().lower())
    return found


class SshdCheck(HostCheck):
    type_name = "sshd"
    summary = "The SSH daemon refuses root and password logins (effective settings)."
    target_schema: ClassVar[dict[str, Any]] = {
        "type": "string",
        "minLength": 1,
        "description": "the sshd config file, e.g. /etc/ssh/sshd_config",
    }
    expect_schema: ClassVar[dict[str, dict[str, Any]]] = {
        "root_login": {"type": "boolean"},
        "password_login": {"type": "boolean"},
        "settings": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "other sshd settings and their values (lowercase, as sshd -T prints)",
        },
    }

    def inspect(self, host: Any) -> Measurement:
        path = self.spec.target
        expect = {"root_login": False, "password_login": False, **self.spec.expect}
        seen = Expectations(path)
        binary = "/usr/sbin/sshd" if host.file("/usr/sbin/sshd").exists else "sshd"
        result = host.run("%s -T -f %s -C user=root,host=localhost,addr=127.0.0.1", binary, path)
        if result.rc == 0 and result.stdout.strip():
            settings = _settings(result.stdout)
            seen.fact("source", "sshd -T")
        else:
            f = host.file(path)
            if not f.exists:
                raise CheckError(f"sshd config {path} does not exist on {self.host_id}")
            settings = _settings(f.content_string)
            seen.fact("source", "config file")
        root = settings.get("permitrootlogin", "prohibit-password")
        password = settings.get("passwordauthentication", "yes") == "yes" or (
            settings.get("kbdinteractiveauthentication", "no") == "yes"
            and settings.get("usepam", "no") == "yes"
        )
        seen.fact("permitrootlogin", root)
        seen.fact("passwordauthentication", settings.get("passwordauthentication", "yes"))
        if (root != "no") != expect["root_login"]:
            seen.fail(
                f"PermitRootLogin is {root}, expected "
                f"{'root logins allowed' if expect['root_login'] else 'no'}"
            )
        if password != expect["password_login"]:
            seen.fail(
                "password logins are "
                f"{'allowed' if password else 'refused'}, expected them "
                f"{'allowed' if expect['password_login'] else 'refused'}"
            )
        for key, wanted in (expect.get("settings") or {}).items():
            actual = settings.get(key.lower())
            if actual != str(wanted).lower():
                seen.fail(f"{key} is {actual}, expected {wanted}")
        return seen.measurement()


class LoginUsersCheck(HostCheck):
    type_name = "login_users"
    summary = "The users with a login shell are exactly the allowed ones."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches", "unexpected"})
    target_schema: ClassVar[dict[str, Any]] = {
        **STRINGS,
        "description": "the users allowed a login shell",
    }

    def inspect(self, host: Any) -> Measurement:
        allowed = sorted(set(as_list(self.spec.target)))
        users = []
        for line in host.check_output("getent passwd").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[6] and not _NO_LOGIN.search(fields[6]):
                users.append(fields[0])
        seen = Expectations("login users")
        seen.fact("login_users", sorted(users))
        extra = sorted(set(users) - set(allowed))
        if extra:
            seen.fail(f"users with a login shell beyond the allowed ones: {', '.join(extra)}")
        return seen.measurement({"unexpected": float(len(extra))})


class SudoMembersCheck(HostCheck):
    type_name = "sudo_members"
    summary = "The members of the sudo groups (sudo, wheel, admin) are exactly the allowed ones."
    target_schema: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ],
        "description": "the users allowed to use sudo ([] for none)",
    }
    options_schema: ClassVar[dict[str, dict[str, Any]]] = {
        **HostCheck.options_schema,
        "groups": {**STRINGS, "description": "the sudo groups (default: sudo, wheel, admin)"},
    }

    def inspect(self, host: Any) -> Measurement:
        allowed = sorted(set(as_list(self.spec.target)))
        groups = as_list(self.spec.options.get("groups")) or ["sudo", "wheel", "admin"]
        members: set[str] = set()
        seen = Expectations("sudo members")
        for name in groups:
            group = host.group(name)
            if group.exists:
                members.update(group.members)
        seen.fact("sudo_members", sorted(members))
        if sorted(members) != allowed:
            seen.fail(
                f"sudo members are [{', '.join(sorted(members))}], expected [{', '.join(allowed)}]"
            )
        return seen.measurement()


class PrivateKeysCheck(HostCheck):
    type_name = "private_keys"
    summary = "No private key under the given folders is readable by other users."
    threshold_keys: ClassVar[frozenset[str]] = frozenset({"mismatches", "readable_keys"})
    target_schema: ClassVar[dict[str, Any]] = {**STRINGS, "description": "folders to search"}

    def inspect(self, host: Any) -> Measurement:
        folders = as_list(self.spec.target)
        found: list[str] = []
        for folder in folders:
            # a folder that is not there (a typo, another host's layout) was never searched
            where = host.file(folder)
            if not where.exists:
                raise CheckError(f"private_keys: {folder} does not exist on {self.host_id}")
            if not where.is_directory:
                raise CheckError(f"private_keys: {folder} is not a folder on {self.host_id}")
            # world-readable regular files under 1 MB that hold a PEM or OpenSSH private key
            result = host.run(
                "find %s -xdev -type f -perm -o+r -size -1024k "
                "-exec grep -l -s -e 'PRIVATE KEY-----' {} +",
                folder,
            )
            # find exits 1 both when grep found nothing and when it could not read a folder:
            # only its own messages on stderr tell them apart (grep's are silenced by -s)
            detail = result.stderr.strip().splitlines()
            if result.rc not in (0, 1) or detail:
                raise CheckError(
                    f"private_keys: cannot search all of {folder} on {self.host_id}: "
                    f"{detail[-1] if detail else f'exit status {result.rc}'}"
                )
            found.extend(line for line in result.stdout.splitlines() if line.strip())
        seen = Expectations("private keys")
        seen.fact("readable_key_files", sorted(found)[:100])
        if found:
            shown = ", ".join(sorted(found)[:10]) + (" …" if len(found) > 10 else "")
            seen.fail(f"private keys readable by others: {shown}")
        return seen.measurement({"readable_keys": float(len(found))})
