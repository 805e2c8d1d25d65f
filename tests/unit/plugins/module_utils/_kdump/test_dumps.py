from ansible_collections.kernel.kexec.plugins.module_utils._kdump.dumps import list_dumps

from ...fakes import host as fakes
from .kdump_fakes import write_dump


def test_kdump_tools_layout_newest_first(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("var/crash/kexec_cmd", "kexec -p ...")  # kdump-config's own files beside the crash directories
    host.write("var/crash/kdump_lock", "")
    write_dump(host, "/var/crash/202511301000", "dump.202511301000", mtime=1000, log="dmesg.202511301000")
    write_dump(host, "/var/crash/202512011200", "dump.202512011200", mtime=2000, log="dmesg.202512011200")
    write_dump(host, "/var/crash/202512011300", "dump-incomplete", mtime=3000)  # still being written
    dumps = list_dumps(host.root, "/var/crash")
    assert [(d["path"], d["mtime"], d["dmesg"]) for d in dumps] == [
        ("/var/crash/202512011200/dump.202512011200", 2000, "/var/crash/202512011200/dmesg.202512011200"),
        ("/var/crash/202511301000/dump.202511301000", 1000, "/var/crash/202511301000/dmesg.202511301000"),
    ]
    assert dumps[0]["size"] == len(b"makedumpfile\0\0\0\0")


def test_kdump_utils_and_suse_names(tmp_path):
    host = fakes.FakeHost(tmp_path)
    write_dump(host, "/var/crash/127.0.0.1-2025-12-01-12:00:00", "vmcore", mtime=10, log="vmcore-dmesg.txt")
    write_dump(host, "/var/crash/127.0.0.1-2025-12-01-12:00:00", "vmcore-dmesg.txt", mtime=10)
    write_dump(host, "/var/crash/2025-12-02-08:00", "vmcore.flat", mtime=20)
    write_dump(host, "/var/crash/2025-12-03-08:00", "vmcore-incomplete", mtime=30)
    assert [(d["path"], d["dmesg"]) for d in list_dumps(host.root, "/var/crash")] == [
        ("/var/crash/2025-12-02-08:00/vmcore.flat", None),
        ("/var/crash/127.0.0.1-2025-12-01-12:00:00/vmcore", "/var/crash/127.0.0.1-2025-12-01-12:00:00/vmcore-dmesg.txt"),
    ]


def test_no_directory_no_dumps(tmp_path):
    assert list_dumps(str(tmp_path), "/var/crash") == []
