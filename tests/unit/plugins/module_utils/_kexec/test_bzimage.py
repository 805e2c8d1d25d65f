"""The bzImage setup header: parsed from a real Debian kernel and from crafted ones."""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage

from .legacy import legacy_fakes as fakes

real_kernel = pytest.mark.skipif(not os.path.exists(fakes.REAL_KERNEL),
                                 reason="no real kernel at %s: tests/qemu/build-image.sh puts the guest's there"
                                 % fakes.REAL_KERNEL)


@real_kernel
def test_real_debian_kernel_is_legacy_loadable():
    header = bzimage.read_header(fakes.REAL_KERNEL)
    bzimage.check_legacy_loadable(header)
    assert header.version >= 0x020f and header.cmdline_size == 2047
    assert header.kernel_alignment == 0x200000 and header.pref_address == 0x1000000
    assert header.init_size > header.kernel_size > 1 << 20
    # syssize counts 16-byte paragraphs of the payload; a signed Debian kernel carries its
    # Authenticode signature after it, which the header does not count.
    assert 0 <= header.kernel_size - header.syssize * 16 < 8192
    assert header.header_end > 0x268 and header.header_bytes()[:1] == bytes([header.setup_sects])


@real_kernel
def test_real_kernel_cut_by_one_page_is_refused(tmp_path):
    data = open(fakes.REAL_KERNEL, "rb").read()
    cut = tmp_path / "vmlinuz-cut"
    cut.write_bytes(data[:-4096])
    with pytest.raises(KexecError, match="is truncated"):
        bzimage.read_header(str(cut))


def test_crafted_header_fields(tmp_path):
    header = bzimage.read_header(fakes.bzimage(str(tmp_path / "vmlinuz")))
    assert header.setup_size == 28 * 512 and header.kernel_size == 0x9000
    assert header.init_size == 0x2600000 and header.header_end == 0x202 + 0x6a


def test_setup_sects_zero_means_four(tmp_path):
    header = bzimage.read_header(fakes.bzimage(str(tmp_path / "vmlinuz"), setup_sects=0))
    assert header.setup_size == 5 * 512


def test_truncated_image_is_refused_with_sizes(tmp_path):
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), cut=100)
    with pytest.raises(KexecError) as caught:
        bzimage.read_header(path)
    assert "36864 bytes of kernel" in caught.value.msg and "the file has 36764" in caught.value.msg


def test_not_a_bzimage(tmp_path):
    path = tmp_path / "initrd"
    path.write_bytes(b"\x1f\x8b" + bytes(4096))
    with pytest.raises(KexecError, match="not an x86 bzImage"):
        bzimage.read_header(str(path))


def test_too_short(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"MZ")
    with pytest.raises(KexecError, match="too short"):
        bzimage.read_header(str(path))


@pytest.mark.parametrize("fields, reason", [
    (dict(protocol=0x020b), "boot protocol 2.11"),
    (dict(loadflags=0), "LOADED_HIGH"),
    (dict(xloadflags=0x1), "XLF_CAN_BE_LOADED_ABOVE_4G"),
    (dict(relocatable=0), "not relocatable"),
    (dict(init_size=0), "init_size is 0"),
    (dict(kernel_alignment=0x300000), "not a power of two"),
])
def test_legacy_rules_name_the_field(tmp_path, fields, reason):
    header = bzimage.read_header(fakes.bzimage(str(tmp_path / "vmlinuz"), **fields))
    with pytest.raises(KexecError, match=reason):
        bzimage.check_legacy_loadable(header)
