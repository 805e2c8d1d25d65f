import os
import struct

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.image import check_for_file_load, inspect

from ...fakes import host as fakes
from ...fakes.files import ReadCounter
from .legacy import legacy_fakes


@pytest.fixture
def image_file(tmp_path):
    """Write ``content`` (bytes) or a fake bzImage (keyword fields) and return its path."""
    def make(content=None, **fields):
        path = str(tmp_path / "vmlinuz")
        if content is None:
            return fakes.write_bzimage(path, **fields)
        return fakes.write_file(path, content)
    return make


def test_inspect_bzimage(image_file):
    path = image_file(release="6.12.9-amd64", protocol=0x020f, cmdline_size=2047)
    image = inspect(path)
    assert (image.kind, image.release, image.protocol, image.cmdline_max) == ("bzImage", "6.12.9-amd64", 0x20f, 2047)
    assert image.x86_64_loadable is True
    assert image.as_dict() == {"path": path, "format": "bzImage", "release": "6.12.9-amd64",
                               "boot_protocol": "2.15", "cmdline_max": 2047}


def test_inspect_bzimage_without_version_string(image_file):
    assert inspect(image_file(release=None)).release is None


@pytest.mark.parametrize("protocol, cmdline_max", [(0x0205, 255), (0x0206, 4095), (0x020f, 4095)])
def test_cmdline_size_is_read_from_boot_protocol_2_06(image_file, protocol, cmdline_max):
    assert inspect(image_file(protocol=protocol, cmdline_size=4095)).cmdline_max == cmdline_max


@pytest.mark.parametrize("protocol, loadflags, xloadflags, loadable", [
    (0x020c, 0x01, 0x03, True),
    (0x020b, 0x01, 0x03, False),  # before 2.12
    (0x020f, 0x00, 0x03, False),  # not LOADED_HIGH: a zImage
    (0x020f, 0x01, 0x02, False),  # not XLF_KERNEL_64
    (0x020f, 0x01, 0x01, False),  # not XLF_CAN_BE_LOADED_ABOVE_4G
])
def test_x86_64_loadable(image_file, protocol, loadflags, xloadflags, loadable):
    image = inspect(image_file(protocol=protocol, loadflags=loadflags, xloadflags=xloadflags))
    assert image.x86_64_loadable is loadable


@pytest.mark.parametrize("content, kind", [
    (bytes(0x38) + b"ARM\x64" + bytes(0x200), "arm64-Image"),
    (b"MZ\0\0zimg" + bytes(0x200), "EFI-zboot"),
    (b"\x7fELF\x02\x01\x01" + bytes(0x200), "ELF"),
    (bytes(0x38) + b"RSC\x05" + bytes(0x200), "riscv-Image"),
    (bytes(0x30) + b"RISCV\0\0\0" + bytes(0x200), "riscv-Image"),  # the magic before header version 0.2
    (b"MZ" + bytes(0x200), "PE"),  # an EFI stub without another header
])
def test_inspect_other_formats(image_file, content, kind):
    image = inspect(image_file(content))
    assert image.kind == kind
    assert image.release is None and image.as_dict()["boot_protocol"] is None


# --- truncated bzImages: refused here, before any load --------------------------------------------------

@pytest.mark.parametrize("cut", [1, 0x1000 - 0x267], ids=["one-byte", "inside-the-setup-header"])
def test_inspect_refuses_a_truncated_bzimage(image_file, cut):
    path = image_file(cut=cut)
    with pytest.raises(KexecError) as info:
        inspect(path)
    # the file, what its header promises (2560 bytes of setup + 96 paragraphs), what it has
    assert info.value.msg.startswith("kernel %s is truncated: its x86 setup header (2560 bytes of setup, then syssize "
                                     "96 paragraphs of 16 bytes) promises 4096 bytes, the file has %d; "
                                     % (path, 0x1000 - cut))
    assert "a kexec into it would crash the machine" in info.value.msg


def test_inspect_accepts_a_complete_bzimage_and_a_signature_after_it(image_file):
    assert inspect(image_file()).kind == "bzImage"
    assert inspect(image_file(fakes.bzimage_bytes() + b"\x30\x82" + bytes(1470))).kind == "bzImage"


def test_inspect_refuses_a_bzimage_shorter_than_its_pe_sections(image_file):
    data = bytearray(fakes.bzimage_bytes())
    legacy_fakes.pe_header(data, [(b".setup", 0x200, 0x800), (b".text", 0xa00, 0x600 + 32)])
    path = image_file(bytes(data))
    with pytest.raises(KexecError) as info:
        inspect(path)
    assert info.value.msg.startswith("kernel %s is truncated: its PE header (section .text ends there) promises 4128 "
                                     "bytes, the file has 4096; " % path)


@pytest.mark.parametrize("magic, kind", [
    ((0x38, b"ARM\x64"), "arm64-Image"),
    ((4, b"zimg"), "EFI-zboot"),
    (None, "PE"),  # an MZ/PE file and nothing more
])
def test_other_formats_are_not_held_to_their_pe_header(image_file, magic, kind):
    data = legacy_fakes.pe_header(bytearray(0x1000), [(b".text", 0x1000, 1 << 30)])  # says a GiB follows
    if magic:
        data[magic[0]:magic[0] + len(magic[1])] = magic[1]
    image = inspect(image_file(bytes(data)))
    assert image.kind == kind
    check_for_file_load(image, "ro", "aarch64")


def test_a_short_arm64_image_is_left_to_the_kernel(image_file):
    """No length promise is read from other formats: a cut arm64 Image is inspected as before."""
    assert inspect(image_file(bytes(0x38) + b"ARM\x64" + bytes(8))).kind == "arm64-Image"


@pytest.mark.parametrize("content", [
    fakes.GZIP_INITRD,
    b"\x28\xb5\x2f\xfd" + bytes(2000),  # zstd
    b"BZh91AY&SY" + bytes(2000),  # bzip2
    b"hello",
    bytes(63),
])
def test_inspect_refuses_what_is_not_a_kernel(image_file, content):
    path = image_file(content)
    with pytest.raises(KexecError, match="is not a kernel image") as info:
        inspect(path)
    assert path in info.value.msg


def test_inspect_missing_and_directory(tmp_path):
    with pytest.raises(KexecError, match="does not exist"):
        inspect(str(tmp_path / "vmlinuz-nope"))
    with pytest.raises(KexecError, match="is a directory"):
        inspect(str(tmp_path))


@pytest.mark.parametrize("cmdline", ["x" * 2016, "\u00e9" * 1008])
def test_longest_cmdline_accepted(image_file, cmdline):
    # cmdline_size 2047 = 2016 bytes + NUL + 30 bytes bzImage64_load keeps for elfcorehdr=
    check_for_file_load(inspect(image_file(cmdline_size=2047)), cmdline, "x86_64")


@pytest.mark.parametrize("cmdline, length", [("x" * 2017, 2017), ("\u00e9" * 1009, 2018)])
def test_one_byte_too_long_cmdline_refused(image_file, cmdline, length):
    with pytest.raises(KexecError) as info:
        check_for_file_load(inspect(image_file(cmdline_size=2047)), cmdline, "x86_64")
    assert "command line is %d bytes" % length in info.value.msg
    assert "at most 2016" in info.value.msg


@pytest.mark.parametrize("fields", [
    dict(protocol=0x0205),
    dict(protocol=0x020b),
    dict(xloadflags=0x02),
    dict(xloadflags=0x01),
])
def test_file_load_refuses_kernel_it_cannot_load(image_file, fields):
    with pytest.raises(KexecError, match="cannot be loaded by kexec_file_load"):
        check_for_file_load(inspect(image_file(**fields)), "ro", "x86_64")


@pytest.mark.parametrize("content", [b"\x7fELF\x02\x01\x01" + bytes(0x200), b"MZ" + bytes(0x200)])
def test_file_load_on_x86_needs_a_bzimage(image_file, content):
    with pytest.raises(KexecError, match="is not an x86 bzImage"):
        check_for_file_load(inspect(image_file(content)), "ro", "x86_64")


@pytest.mark.parametrize("content", [None, b"\x7fELF\x02\x01\x01" + bytes(0x200)])
def test_file_load_checks_are_x86_only(image_file, content):
    image = inspect(image_file(content, xloadflags=0) if content is None else image_file(content))
    check_for_file_load(image, "x" * 10000, "aarch64")


# --- cheap checks: the header refuses what is no kernel, or larger than its header allows -----------------

GIB = 1 << 30


def sparse(path, size, head=b""):
    """A file of ``size`` bytes that are zero but ``head`` at its start, taking no disk space."""
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return str(path)


@pytest.mark.parametrize("arch_name", [None, "x86_64", "aarch64", "riscv64", "ppc64le", "s390x"])
def test_a_sparse_file_is_refused_by_its_first_bytes(tmp_path, monkeypatch, arch_name):
    """A disk image or sparse file of 8 GiB named as the kernel: refused from HEADER_READ bytes, on every arch."""
    path = sparse(tmp_path / "disk.img", 8 * GIB)
    reads = ReadCounter(monkeypatch)
    with pytest.raises(KexecError) as info:
        inspect(path, arch_name)
    assert info.value.msg == ("%s is not a kernel image: its first %d bytes are all zero (a sparse or blank file, a "
                              "disk image?); refused before reading the rest" % (path, bzimage.HEADER_READ))
    assert reads.of(os.stat(path)) == [bzimage.HEADER_READ]


@pytest.mark.parametrize("arch_name", [None, "x86_64", "aarch64", "riscv64", "ppc64le"])
def test_a_file_in_no_kernel_format_is_refused_by_its_header(image_file, arch_name):
    path = image_file(b"070701" + bytes(0x200) + b"\xff" * 0x1000)  # a cpio archive, as an uncompressed initrd is
    with pytest.raises(KexecError) as info:
        inspect(path, arch_name)
    assert info.value.msg.startswith("%s is not a kernel image: no header of a format kexec loads (x86 bzImage, "
                                     "arm64 or RISC-V Image, EFI zboot or PE, ELF) in its first %d bytes"
                                     % (path, bzimage.HEADER_READ))


def test_s390x_takes_a_file_in_no_known_format_as_the_kernel_does(image_file):
    """arch/s390/kernel/kexec_image.c probes nothing: an s390 image has no magic to check."""
    assert inspect(image_file(b"070701" + bytes(0x200)), "s390x").kind == "unknown"


@pytest.mark.parametrize("content", [
    b"\x7fELF\x02\x01\x01" + bytes(0x200),
    bytes(0x38) + b"ARM\x64" + bytes(0x200),
    b"MZ\0\0zimg" + bytes(0x200),
])
def test_on_x86_64_only_a_bzimage_passes_the_header(image_file, content):
    """kexec_file_load on x86_64 knows bzImage64 only, the legacy loader too: the header says so at once."""
    path = image_file(content)
    with pytest.raises(KexecError, match="is not an x86 bzImage"):
        inspect(path, "x86_64")
    assert inspect(path, "aarch64").kind != "bzImage"


def image_header(magic, text_offset, image_size):
    data = bytearray(0x40)
    struct.pack_into("<QQ", data, 8, text_offset, image_size)
    data[magic[0]:magic[0] + len(magic[1])] = magic[1]
    return bytes(data)


@pytest.mark.parametrize("kind, magic, text_offset, limit", [
    # arm64 image_load: memsz = image_size + text_offset; riscv: image_size; page-aligned to 64 KiB
    ("arm64-Image", (0x38, b"ARM\x64"), 0x80000, 0x2000000 + 0x80000),
    ("riscv-Image", (0x38, b"RSC\x05"), 0x200000, 0x2000000),
])
def test_an_image_larger_than_its_image_size_is_refused_before_the_read(tmp_path, monkeypatch, kind, magic,
                                                                        text_offset, limit):
    head = image_header(magic, text_offset, 0x2000000 - 100)  # 32 MiB less 100 bytes: 32 MiB once aligned
    assert inspect(sparse(tmp_path / "at-limit", limit, head)).kind == kind
    path = sparse(tmp_path / "huge", 8 * GIB, head)
    reads = ReadCounter(monkeypatch)
    with pytest.raises(KexecError) as info:
        inspect(path, "aarch64")
    assert info.value.msg.startswith("kernel %s is %d bytes, more than its %s header allows (image_size %d"
                                     % (path, 8 * GIB, kind, 0x2000000 - 100))
    assert ", %d bytes once page-aligned)" % limit in info.value.msg
    assert reads.of(os.stat(path)) == [bzimage.HEADER_READ]
    with pytest.raises(KexecError, match="more than its %s header allows" % kind):
        inspect(sparse(tmp_path / "one-more", limit + 1, head))
    # image_size 0 (arm64 kernels before 3.17): no bound is guessed; the kernel refuses such an image itself
    assert inspect(sparse(tmp_path / "old", GIB, image_header(magic, text_offset, 0))).kind == kind
