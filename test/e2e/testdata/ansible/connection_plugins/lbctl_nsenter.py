# A connection plugin for lbctl's tests: it runs Ansible's tasks inside a
# sandbox LB node (test/testbed), entering the mount, PID, network and UTS
# namespaces of the node's systemd, PID 1 there, as nsenter(1) does (the
# same idea as community.general.nsenter, which Debian's ansible-core does
# not ship). Modules, file copies and commands run on the node exactly as
# they would over ssh on a real one; only the transport differs. It is not
# shipped: real nodes are reached over ssh.
from __future__ import annotations

DOCUMENTATION = """
name: lbctl_nsenter
short_description: run tasks inside a sandbox LB node's namespaces (lbctl tests only)
description:
  - Runs commands through nsenter into the namespaces of the node's systemd.
options:
  pid:
    description: PID of the node's systemd (PID 1 in the node's namespaces).
    required: true
    vars:
      - name: lbctl_nsenter_pid
"""

import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase


class Connection(ConnectionBase):
    transport = "lbctl_nsenter"
    has_pipelining = True

    def _nsenter(self):
        pid = str(int(self.get_option("pid")))
        return ["nsenter", "-t", pid, "-m", "-p", "-n", "-u", "--"]

    def _connect(self):
        self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        try:
            p = subprocess.run(self._nsenter() + ["/bin/sh", "-c", cmd], input=in_data,
                               capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AnsibleConnectionFailure("nsenter: %s" % e)
        return p.returncode, p.stdout, p.stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as f:
            p = subprocess.run(self._nsenter() + ["/bin/sh", "-c", 'cat > "$1"', "sh", out_path],
                               stdin=f, capture_output=True, timeout=600)
        if p.returncode != 0:
            raise AnsibleError("put %s: %s" % (out_path, p.stderr.decode(errors="replace")))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as f:
            p = subprocess.run(self._nsenter() + ["cat", in_path], stdout=f,
                               stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise AnsibleError("fetch %s: %s" % (in_path, p.stderr.decode(errors="replace")))

    def close(self):
        self._connected = False
