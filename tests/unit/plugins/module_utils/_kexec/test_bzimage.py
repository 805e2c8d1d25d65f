"""The bzImage setup header: parsed from a real Debian kernel and from crafted ones."""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage

from ...fakes.files import ReadCounter
from .legacy import legacy_fakes as fakes

real_kernel = pytest.mark.skipif(not os.path.exists(fakes.REAL_KERNEL),
                                 reason="no real kernel at %s: roles/qemu_guest/files/build-image.sh puts the guest's there"
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


@real_kernel
def test_real_kernel_pe_sections_end_where_syssize_does(tmp_path):
    """The Debian kernel's EFI stub header and its setup header promise the same length;
    its Authenticode signature follows, and a file without it is still complete."""
    data = open(fakes.REAL_KERNEL, "rb").read()
    header = bzimage.read_header(fakes.REAL_KERNEL)
    assert bzimage.pe_data_end(header.raw) == (header.promised_size, ".data")
    assert header.promised_size < len(data)
    unsigned = tmp_path / "vmlinuz-unsigned"
    unsigned.write_bytes(data[:header.promised_size])
    assert bzimage.read_header(str(unsigned)).file_size == header.promised_size
    unsigned.write_bytes(data[:header.promised_size - 1])
    with pytest.raises(KexecError) as caught:
        bzimage.read_header(str(unsigned))
    assert "promises %d bytes, the file has %d" % (header.promised_size, header.promised_size - 1) in caught.value.msg


def test_crafted_header_fields(tmp_path):
    header = bzimage.read_header(fakes.bzimage(str(tmp_path / "vmlinuz")))
    assert header.setup_size == 28 * 512 and header.kernel_size == 0x9000
    assert header.init_size == 0x2600000 and header.header_end == 0x202 + 0x6a


def test_setup_sects_zero_means_four(tmp_path):
    header = bzimage.read_header(fakes.bzimage(str(tmp_path / "vmlinuz"), setup_sects=0))
    assert header.setup_size == 5 * 512


@pytest.mark.parametrize("cut", [1, 100, 0x9000, 0x9000 + 28 * 512 - 0x206])
def test_truncated_image_is_refused_with_sizes(tmp_path, cut):
    """Cut by one byte, inside the kernel, right after the setup, inside the setup header itself."""
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), cut=cut)
    promised = 28 * 512 + 0x9000
    with pytest.raises(KexecError) as caught:
        bzimage.read_header(path)
    assert caught.value.msg.startswith("kernel %s is truncated: its x86 setup header (14336 bytes of setup, then "
                                       "syssize 2304 paragraphs of 16 bytes) promises %d bytes, the file has %d;"
                                       % (path, promised, promised - cut))


def test_complete_image_and_a_signature_after_it_are_accepted(tmp_path):
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), pe=True)
    assert bzimage.read_header(path).file_size == 28 * 512 + 0x9000
    with open(path, "ab") as handle:
        handle.write(b"\x30\x82" + bytes(1470))  # an Authenticode signature, outside every section
    bzimage.read_header(path)


def test_pe_section_past_the_end_is_refused(tmp_path):
    """The setup header is content (syssize one page short), the PE section table is not."""
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), pe=True, syssize=0x8000 // 16, cut=16)
    with pytest.raises(KexecError) as caught:
        bzimage.read_header(path)
    end = 28 * 512 + 0x9000
    assert caught.value.msg.startswith("kernel %s is truncated: its PE header (section .text ends there) promises "
                                       "%d bytes, the file has %d;" % (path, end, end - 16))


@pytest.mark.parametrize("pe_at, optional_size", [
    (0x1f0, 0xa0),  # the section table would lie past the bytes read: not checked
    (0x40, 0x300),
    (0x9000, 0xa0),  # no "PE\0\0" where the pointer points
])
def test_pe_header_out_of_reach_is_not_checked(tmp_path, pe_at, optional_size):
    data = bytearray(open(fakes.bzimage(str(tmp_path / "vmlinuz")), "rb").read())
    if pe_at < 0x1f0:
        fakes.pe_header(data, [(b".text", 28 * 512, 1 << 30)], at=pe_at, optional_size=optional_size)
    else:
        data[0:2] = b"MZ"
        data[0x3c:0x40] = pe_at.to_bytes(4, "little")
    path = fakes.write(tmp_path, "vmlinuz-pe", bytes(data))
    assert bzimage.pe_data_end(data[:bzimage.HEADER_READ]) is None
    bzimage.read_header(path)


def test_pe_sections_without_file_data_do_not_count():
    data = fakes.pe_header(bytearray(bzimage.HEADER_READ), [(b".setup", 0x200, 0xe00), (b".bss", 0x50000, 0)])
    assert bzimage.pe_data_end(bytes(data)) == (0x1000, ".setup")
    assert bzimage.pe_data_end(bytes(fakes.pe_header(bytearray(bzimage.HEADER_READ), [(b".bss", 0x5000, 0)]))) is None


@pytest.mark.parametrize("setup_sects", [27, 0])
def test_read_image_reads_the_file_once_setup_then_kernel(tmp_path, setup_sects):
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), setup_sects=setup_sects, pe=True)
    data = open(path, "rb").read()
    header, read = bzimage.read_image(path)
    assert header.setup_size == (setup_sects or 4) * 512 + 512 and header.file_size == len(data)
    assert b"".join(read.parts) == data and read.whole
    assert read.parts[-1] == data[header.setup_size:]  # the legacy kernel segment, as it is


@pytest.mark.parametrize("reader", [bzimage.read_header, bzimage.read_image])
def test_not_a_bzimage(tmp_path, reader):
    path = tmp_path / "initrd"
    path.write_bytes(b"\x1f\x8b" + bytes(4096))
    with pytest.raises(KexecError, match="not an x86 bzImage"):
        reader(str(path))


@pytest.mark.parametrize("reader", [bzimage.read_header, bzimage.read_image])
def test_too_short(tmp_path, reader):
    path = tmp_path / "tiny"
    path.write_bytes(b"MZ")
    with pytest.raises(KexecError, match="too short"):
        reader(str(path))


def test_read_image_refuses_a_truncated_image(tmp_path):
    with pytest.raises(KexecError, match="is truncated"):
        bzimage.read_image(fakes.bzimage(str(tmp_path / "vmlinuz"), cut=1))


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


# --- a file larger than its header allows: refused before it is read -------------------------------------

GIB = 1 << 30
SETUP = 28 * 512
INIT_SIZE = 0x2600000  # legacy_fakes.bzimage's init_size, page-aligned already


def grow(path, size):
    """Make the file ``path`` ``size`` bytes long, the rest zeros (sparse: no disk space taken)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)
    return path


@pytest.mark.parametrize("reader", [bzimage.read_header, bzimage.read_image])
def test_a_bzimage_larger_than_setup_plus_init_size_is_refused_before_the_read(tmp_path, monkeypatch, reader):
    """bzImage64_load makes the file after the setup one segment in PAGE_ALIGN(init_size) bytes; the kernel
    refuses a larger one (sanity_check_segment_list). A bzImage header on 8 GiB is refused from its header."""
    path = grow(fakes.bzimage(str(tmp_path / "vmlinuz")), 8 * GIB)
    reads = ReadCounter(monkeypatch)
    with pytest.raises(KexecError) as caught:
        reader(path)
    assert caught.value.msg == (
        "kernel %s is %d bytes, more than its x86 setup header allows: %d bytes of setup and at most init_size %d "
        "(page-aligned) of kernel, %d bytes, as kexec_file_load takes it; refused before reading or hashing it (a "
        "disk image, or a kernel with something appended?)" % (path, 8 * GIB, SETUP, INIT_SIZE, SETUP + INIT_SIZE))
    assert reads.of(os.stat(path)) == [bzimage.HEADER_READ]


def test_the_init_size_bound_is_the_kernels_to_the_byte(tmp_path):
    path = fakes.bzimage(str(tmp_path / "vmlinuz"), init_size=INIT_SIZE - 100)  # PAGE_ALIGN: INIT_SIZE again
    assert bzimage.read_header(grow(path, SETUP + INIT_SIZE)).file_size == SETUP + INIT_SIZE
    with pytest.raises(KexecError, match="more than its x86 setup header allows"):
        bzimage.read_header(grow(path, SETUP + INIT_SIZE + 1))
    # Before boot protocol 2.10 (or with init_size 0) the header gives no bound: none is guessed
    for fields in (dict(init_size=0), dict(protocol=0x0209)):
        bzimage.check_plausible(bzimage.read_header(grow(fakes.bzimage(path, **fields), GIB)))


@real_kernel
def test_real_kernel_and_its_signature_are_far_below_the_init_size_bound():
    header = bzimage.read_header(fakes.REAL_KERNEL)
    assert header.file_size > header.promised_size  # signed: the signature follows the promised bytes
    bzimage.check_plausible(header)
    assert header.file_size < (header.setup_size + header.init_size) // 2
