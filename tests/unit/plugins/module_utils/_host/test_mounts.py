import os

from ansible_collections.kernel.kexec.plugins.module_utils._host import mounts

MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
31 22 254:2 / /boot/efi rw,relatime shared:20 - vfat /dev/vda2 rw,fmask=0077,dmask=0077
32 22 8:17 / /mnt/with\\040a\\040space rw shared:21 master:3 - exfat /dev/sdb1 rw
33 22 8:33 / /mnt/usb rw,relatime - fuseblk /dev/sdc1 rw,user_id=0
not a mountinfo line
40 22 x:y / /odd rw - ext4 /dev/odd rw
"""


def test_parse_mountinfo_gives_each_device_its_file_system_type():
    assert mounts.parse_mountinfo(MOUNTINFO) == {
        (254, 1): "ext4", (0, 22): "proc", (254, 2): "vfat", (8, 17): "exfat", (8, 33): "fuseblk"}


def test_file_system_types_below_a_root(tmp_path):
    path = tmp_path / mounts.MOUNTINFO
    path.parent.mkdir(parents=True)
    path.write_text(MOUNTINFO)
    assert mounts.file_system_types(str(tmp_path))[(254, 2)] == "vfat"


def test_an_unreadable_or_missing_mount_table_is_empty(tmp_path):
    assert mounts.file_system_types(str(tmp_path)) == {}
    os.makedirs(str(tmp_path / mounts.MOUNTINFO))  # a directory where the file should be
    assert mounts.file_system_types(str(tmp_path)) == {}


def test_device_key_is_what_mountinfo_names_a_stat_result_by(tmp_path):
    status = os.stat(str(tmp_path))
    assert mounts.device_key(status.st_dev) == (os.major(status.st_dev), os.minor(status.st_dev))
    assert mounts.device_key(os.makedev(254, 2)) == (254, 2)
