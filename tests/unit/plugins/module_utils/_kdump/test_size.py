import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kdump.size import (
    INITRD_FACTOR, MARGIN, capture_check, kernel_footprint, mib,
)

from ...fakes import host as fakes
from .kdump_fakes import DEBIAN_INIT_SIZE, MIB, arm64_image, kernel_with_init_size


@pytest.fixture
def tree(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("boot/vmlinuz", kernel_with_init_size(DEBIAN_INIT_SIZE))
    host.write("var/lib/kdump/initrd.img", bytes(12 * MIB))
    return host


def test_x86_footprint_is_the_page_aligned_init_size(tmp_path):
    path = fakes.FakeHost(tmp_path).write("vmlinuz", kernel_with_init_size(0x3f98001))
    assert kernel_footprint(path) == (0x3f99000, "init_size of its x86 boot header")


def test_arm64_footprint_is_the_image_size(tmp_path):
    path = fakes.FakeHost(tmp_path).write("Image", arm64_image(40 * MIB + 1))
    assert kernel_footprint(path) == (40 * MIB + 4096, "image_size of its arm64 Image header")


@pytest.mark.parametrize("content", [fakes.GZIP_INITRD, arm64_image(0), b"short"])
def test_unknown_footprint_is_said_not_guessed(tmp_path, content):
    path = fakes.FakeHost(tmp_path).write("vmlinuz", content)
    memsz, why = kernel_footprint(path)
    assert memsz is None and "footprint is unknown" in why


def test_truncated_bzimage_is_said_to_be_truncated(tmp_path):
    path = fakes.FakeHost(tmp_path).write("vmlinuz", fakes.bzimage_bytes(cut=1))
    memsz, why = kernel_footprint(path)
    assert memsz is None and why.startswith("kernel %s is truncated" % path)


def test_debians_128m_is_too_small_and_auto_256m_fits(tree):
    # The rule: 63.6 MiB kernel + 4 x 12 MiB initrd + 64 MiB = 176 MiB (rounded up).
    required = 0x3f98000 + INITRD_FACTOR * 12 * MIB + MARGIN
    small = capture_check(tree.root, 128 * MIB, "/boot/vmlinuz", "/var/lib/kdump/initrd.img")
    assert (small["fits"], small["required"], small["kernel_memsz"], small["initrd_size"]) == (
        False, required, 0x3f98000, 12 * MIB)
    assert small["explanation"] == (
        "128M of crash memory is too small for the capture kernel, which needs 176M: kernel 64M (init_size of its "
        "x86 boot header) + 4 x initrd 12M (the image and its unpacked content) + 64M margin = 176M; reserve at "
        "least 176M (crashkernel=)")
    fits = capture_check(tree.root, 256 * MIB, "/boot/vmlinuz", "/var/lib/kdump/initrd.img")
    assert fits["fits"] is True and fits["explanation"].startswith("256M of crash memory holds the capture kernel: ")
    assert capture_check(tree.root, required, "/boot/vmlinuz", "/var/lib/kdump/initrd.img")["fits"] is True
    assert capture_check(tree.root, required - 1, "/boot/vmlinuz", "/var/lib/kdump/initrd.img")["fits"] is False


def test_no_reservation_never_fits(tree):
    result = capture_check(tree.root, 0, "/boot/vmlinuz", "/var/lib/kdump/initrd.img")
    assert result["fits"] is False and "no crash memory is reserved" in result["explanation"]


@pytest.mark.parametrize("kernel, initrd, why", [
    (None, "/var/lib/kdump/initrd.img", "capture kernel was not found"),
    ("/boot/vmlinuz", None, "does not exist yet"),
    ("/var/lib/kdump/initrd.img", "/var/lib/kdump/initrd.img", "footprint is unknown"),
])
def test_the_check_is_skipped_when_the_rule_cannot_be_applied(tree, kernel, initrd, why):
    result = capture_check(tree.root, 256 * MIB, kernel, initrd)
    assert result["fits"] is None and result["required"] is None
    assert why in result["explanation"] and "skipped" in result["explanation"]


def test_mib_rounds_up():
    assert (mib(MIB), mib(MIB + 1), mib(0)) == ("1M", "2M", "0M")
