#!/usr/bin/python3
"""The load generator's own accounting, against mqttb: large payloads whose
rest a subscriber discards in the kernel (recv with MSG_TRUNC) must still be
counted once each, in order, with the packet framing intact, at every QoS; and
--copy-payload reads every byte. Nothing here is timed: a run passes on
status=ok with no message lost or duplicated.

Usage: MQTTB_BENCH=build/tests/bench/mqttb-bench \\
       /usr/bin/python3 tests/e2e/test_bench.py build/cli/mqttb
"""
import os
import re
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True

from e2e_common import HOST, BrokerTestCase, kill_process, main, spawn  # noqa: E402

BENCH = os.environ.get("MQTTB_BENCH", "")


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


class BenchAccounting(BrokerTestCase):
    # As compare.sh: two 1 MiB QoS 0 messages in flight per subscriber must fit.
    MQTTB_CONFIG = ("max_output_bytes 67108864",)

    @classmethod
    def setUpClass(cls):
        if not BENCH or not os.access(BENCH, os.X_OK):
            raise unittest.SkipTest("MQTTB_BENCH does not name the mqttb-bench binary")
        super().setUpClass()

    def bench(self, *args):
        cmd = [BENCH, "-h", HOST, "-p", str(self.port), "--quiet", "--warmup", "0.2",
               "-d", "0.6", "--drain", "5", "--stall", "5"] + list(args)
        proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            kill_process(proc)
        lines = [x for x in out.decode().splitlines() if x.startswith("RESULT ")]
        self.assertTrue(lines, "no RESULT line; stderr:\n" + err.decode())
        r = fields(lines[-1])
        self.assertEqual(proc.returncode, 0, lines[-1] + "\n" + err.decode())
        self.assertEqual(r["status"], "ok", lines[-1])
        self.assertEqual(r["lost"], "0", lines[-1])
        self.assertEqual(r["dup"], "0", lines[-1])
        self.assertGreater(float(r["msgs_per_s"]), 0, lines[-1])
        return r

    def test_large_payloads_discarded_at_each_qos(self):
        for qos in ("0", "1", "2"):
            with self.subTest(qos=qos):
                r = self.bench("-s", "p2p", "-q", qos, "-n", "4", "-w", "4", "-l", "65536")
                self.assertEqual(r["rx"], "trunc")
                self.assertGreater(int(r["rx_discarded"]), 0, "no payload was discarded")

    def test_one_mebibyte_and_an_odd_size(self):
        # 1 MiB spans many reads; of 40,000 bytes a 4 KiB read leaves just
        # over SKIP_MIN (32 KiB) unread, so it is discarded too.
        for size in ("1048576", "40000"):
            with self.subTest(size=size):
                r = self.bench("-s", "p2p", "-q", "1", "-n", "2", "-w", "2", "-l", size)
                self.assertEqual(r["rx"], "trunc")
                self.assertGreater(int(r["rx_discarded"]), 0)

    def test_fanout_discards(self):
        r = self.bench("-s", "fanout", "-q", "0", "-n", "8", "-w", "2", "-l", "65536")
        self.assertGreater(int(r["rx_discarded"]), 0)

    def test_copy_payload_reads_every_byte(self):
        r = self.bench("-s", "p2p", "-q", "1", "-n", "4", "-w", "4", "-l", "65536",
                       "--copy-payload")
        self.assertEqual(r["rx"], "copy")
        self.assertEqual(r["rx_discarded"], "0")

    def test_small_payloads_are_read(self):
        r = self.bench("-s", "p2p", "-q", "0", "-n", "4", "-w", "16", "-l", "1024")
        self.assertEqual(r["rx_discarded"], "0")


if __name__ == "__main__":
    main()
