#!/usr/bin/env bash
# Build a Debian test-host image once and cache it.
#
#   build-image.sh [RELEASE [BOOT]]     RELEASE: bookworm (default) or trixie; BOOT: bios (default), efi or sdboot
#
# bios: a 6 GiB sparse MBR disk with one ext4 partition and GRUB for BIOS (grub-pc).
# efi: a 6 GiB sparse GPT disk with an EFI system partition (vfat, /boot/efi) and an ext4 root; on the
#   ESP the signed chain Debian ships for Secure Boot (shim, then GRUB, both signed; the kernel is signed
#   too), installed at the removable-media path EFI/BOOT/BOOTX64.EFI so that firmware with empty
#   variables boots it. The same image serves firmware with Secure Boot off (uefi) and on (secureboot).
# sdboot: the same disk with systemd-boot instead of shim and GRUB, and Boot Loader Specification type 1
#   entries that kernel-install writes on the ESP (/boot/efi/loader/entries, the kernel and initrd copied
#   to /boot/efi/debian/VERSION/) from /etc/kernel/cmdline, as for every kernel installed later.
# Both: a serial console (GRUB and the kernel), sshd with the project's test key for root, python3,
# kexec-tools (only for the benchmark that compares against it; the collection never calls it),
# makedumpfile, and nftables with its service left disabled (the reboot scenario's limit on new SSH
# connections; installed here, not on the guest, so that each run skips apt and Debian's mirror). The initrd holds only the disk's modules (host-only, 7 MB), and a copy of it serves
# capture kernels (/boot/initrd.img-RELEASE-capture). Reboots go through a real bootloader.
# Not kdump-tools: its kernel hook cannot build its initrd inside mmdebstrap; the kdump role
# installs it on the guest, as it would on any host.
#
# Output under $KEXEC_CACHE/images (default ~/.cache/kernel-kexec): bookworm.qcow2 (bookworm, bios),
# otherwise RELEASE-BOOT.qcow2; and, from the bookworm bios build, a copy of the guest's kernel as
# vmlinuz (the unit tests parse a real bzImage).
# Each image's cache is keyed on this script's content: edit it and the image is rebuilt.
# Needs root (mmdebstrap, losetup, mount, chroot); the ESP is written with mtools, not mounted.
set -euo pipefail

release=${1:-bookworm}
boot=${2:-bios}
case $release in bookworm | trixie) ;; *) echo "build-image.sh: release '$release' is not built here (bookworm, trixie)" >&2; exit 2 ;; esac
case $boot in bios | efi | sdboot) ;; *) echo "build-image.sh: boot '$boot' is not built here (bios, efi, sdboot)" >&2; exit 2 ;; esac
cache=${KEXEC_CACHE:-$HOME/.cache/kernel-kexec}
images=$cache/images
name=$release-$boot
[[ $name != bookworm-bios ]] || name=bookworm
image=$images/$name.qcow2
stamp=$images/$name.stamp
key=$cache/ssh/id_ed25519
want=$(sha256sum "$0" | cut -d' ' -f1)
mirror=${KEXEC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

up_to_date() {
    [[ -f $image && -f $stamp && $(cat "$stamp") == "$want" ]]
}
if up_to_date; then
    echo "image up to date: $image"
    exit 0
fi
[[ $(id -u) == 0 ]] || { echo "build-image.sh needs root (mmdebstrap, losetup, mount)" >&2; exit 1; }

mkdir -p "$images" "$(dirname "$key")"
# One build of an image at a time: a second caller (tests/run builds ahead of the scenarios that boot
# it) waits for the first, then finds the image up to date.
exec {build_lock}> "$images/$name.lock"
flock "$build_lock"
if up_to_date; then
    echo "image up to date: $image (built meanwhile)"
    exit 0
fi
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kernel-kexec-test -f "$key"

work=$(mktemp -d "$images/build.XXXXXX")
loop=""
mnt=$work/mnt
# The chroot's /dev, /proc and /sys are bind mounts of the host's. Each is made a slave (its unmount
# never travels back to the host's own /dev/pts), and the work directory is removed only when nothing
# is mounted below it, without crossing into another file system: a failed unmount must not let the
# cleanup delete the host's device nodes.
cleanup() {
    set +e
    local m
    for m in boot/efi dev proc sys ""; do
        mountpoint -q "$mnt/$m" && umount -R "$mnt/$m"
    done
    [[ -n $loop ]] && { partx -d "$loop" 2>/dev/null; losetup -d "$loop"; }
    if findmnt -rn -o TARGET | grep -q "^$work/"; then
        echo "build-image.sh: still mounted below $work; left in place:" >&2
        findmnt -rn -o TARGET | grep "^$work/" >&2
        return
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# The node of partition N of the loop device: devtmpfs makes it, sometimes late; with no udev at all
# it is made by hand.
partition() {
    local part=${loop}p$1 major minor
    for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -b $part ]] && break; partx -a "$loop" 2>/dev/null || true; sleep 0.5; done
    if [[ ! -b $part ]]; then
        IFS=: read -r major minor < "/sys/block/$(basename "$loop")/$(basename "$part")/dev"
        mknod "$part" b "$major" "$minor"
    fi
    echo "$part"
}

packages=linux-image-amd64,systemd-sysv,udev,e2fsprogs,openssh-server,python3,dbus,initramfs-tools,ifupdown,isc-dhcp-client,iproute2,kexec-tools,makedumpfile,python3-apt,procps,less,nftables
case $boot in
    bios) packages+=,grub-pc ;;
    efi) packages+=,grub-efi-amd64,grub-efi-amd64-signed,shim-signed ;;
    sdboot) packages+=,systemd-boot,systemd-boot-efi ;;
esac
echo "mmdebstrap: $release minbase ($boot)"
# Keep the package lists: the guests install packages (the kdump role's kdump-tools) without an apt update.
mmdebstrap --variant=minbase --skip=cleanup/apt/lists --include="$packages" "$release" "$work/rootfs.tar" "$mirror"

raw=$work/disk.raw
truncate -s 6G "$raw"
if [[ $boot == bios ]]; then
    echo 'type=83, bootable' | sfdisk -q "$raw"
else
    printf '%s\n' 'label: gpt' 'size=200MiB, type=uefi' 'type=linux' | sfdisk -q "$raw"
fi
loop=$(losetup -f --show -P "$raw")
if [[ $boot == bios ]]; then
    root_part=$(partition 1)
else
    esp_part=$(partition 1)
    root_part=$(partition 2)
    mkfs.vfat -F 32 -n EFI "$esp_part" > /dev/null
fi
mkfs.ext4 -q -L kexec-root "$root_part"
uuid=$(blkid -s UUID -o value "$root_part")
mkdir -p "$mnt"
mount "$root_part" "$mnt"
tar -C "$mnt" --xattrs --xattrs-include='*' -xpf "$work/rootfs.tar"

echo "UUID=$uuid / ext4 errors=remount-ro 0 1" > "$mnt/etc/fstab"
if [[ $boot != bios ]]; then
    mkdir -p "$mnt/boot/efi"
    echo "UUID=$(blkid -s UUID -o value "$esp_part") /boot/efi vfat umask=0077,nofail 0 1" >> "$mnt/etc/fstab"
fi
echo kexec-guest > "$mnt/etc/hostname"
# kexec-tools must not load a kernel at shutdown behind the tests' back.
sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$mnt/etc/default/kexec"
# Packages the tests install (the kdump role's kdump-tools) must not rebuild the main initrd through
# initramfs-tools' trigger: under TCG that alone takes minutes. kdump-tools builds its own initrd anyway.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$mnt/etc/initramfs-tools/update-initramfs.conf"
# eth0 is allow-hotplug, as Debian's installer writes it: with "auto eth0" ifupdown-pre.service waits
# for every udev event to settle before networking and sshd, the largest variance of a boot under TCG.
cat > "$mnt/etc/network/interfaces" <<NET
auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet dhcp
NET
cat > "$mnt/etc/default/grub" <<GRUB
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB
install -d -m 700 "$mnt/root/.ssh"
install -m 600 "$key.pub" "$mnt/root/.ssh/authorized_keys"
cat > "$mnt/etc/ssh/sshd_config.d/kexec-test.conf" <<SSHD
PermitRootLogin prohibit-password
UseDNS no
SSHD
# A quiet, quick shutdown: nothing in the image waits on the network going down.
mkdir -p "$mnt/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStopSec=15s\n' > "$mnt/etc/systemd/system.conf.d/kexec-test.conf"

mount --rbind --make-rslave /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount -t sysfs sys "$mnt/sys"
if [[ $boot == bios ]]; then
    chroot "$mnt" grub-install --target=i386-pc --boot-directory=/boot "$loop"
fi
[[ $boot == sdboot ]] || chroot "$mnt" update-grub
# The boot initrd holds only what this disk needs (MODULES=list), as a host-only initrd does (dracut's
# default on Fedora and RHEL): Debian's MODULES=most initrd is 36 MB, and unpacking it cost 10 s of every
# boot under TCG. mkinitramfs, not update-initramfs, which update_initramfs=no above turns off.
kernel_release=$(ls "$mnt/lib/modules")
sed -i 's/^MODULES=.*/MODULES=list/' "$mnt/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >> "$mnt/etc/initramfs-tools/modules"
chroot "$mnt" mkinitramfs -o "/boot/initrd.img-$kernel_release" "$kernel_release"
# A capture kernel's initrd of the same kind, as kdump-tools builds one (the stock one did not fit
# 256 MiB of crash memory); the tests load it under this name.
cp "$mnt/boot/initrd.img-$kernel_release" "$mnt/boot/initrd.img-$kernel_release-capture"
if [[ $boot == sdboot ]]; then
    # kernel-install writes the type 1 entry and copies the kernel and initrd to the ESP, here a tmpfs
    # mounted in its place (the ESP itself is written from it below): kernel-install wants the root of a
    # file system, and with RELAX no vfat.
    mount -t tmpfs -o mode=0700 esp "$mnt/boot/efi"
    echo "root=UUID=$uuid ro console=ttyS0,115200 net.ifnames=0" > "$mnt/etc/kernel/cmdline"
    echo debian > "$mnt/etc/kernel/entry-token"
    echo layout=bls > "$mnt/etc/kernel/install.conf"
    chroot "$mnt" env SYSTEMD_RELAX_ESP_CHECKS=1 kernel-install --esp-path=/boot/efi add "$kernel_release" \
        "/boot/vmlinuz-$kernel_release" "/boot/initrd.img-$kernel_release"
    printf '%s\n' 'timeout 0' 'default debian-*' > "$mnt/boot/efi/loader/loader.conf"
    mkdir -p "$mnt/boot/efi/EFI/systemd" "$mnt/boot/efi/EFI/BOOT"
    cp "$mnt/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$mnt/boot/efi/EFI/systemd/systemd-bootx64.efi"
    cp "$mnt/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$mnt/boot/efi/EFI/BOOT/BOOTX64.EFI"
    [[ -f $mnt/boot/efi/loader/entries/debian-$kernel_release.conf ]] ||
        { echo "build-image.sh: kernel-install wrote no entry for $kernel_release" >&2; exit 1; }
else
    # Without udev in the chroot grub-mkconfig names the loop device: boot by UUID.
    sed -i "s|root=$root_part|root=UUID=$uuid|g" "$mnt/boot/grub/grub.cfg"
    grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg"
fi
umount -R "$mnt/dev" "$mnt/proc" "$mnt/sys"
if [[ $boot == efi ]]; then
    # The ESP is laid out as grub-install --uefi-secure-boot lays it out, without mounting it (mtools):
    # Debian's signed shim and GRUB in EFI/debian, the same at the removable-media path EFI/BOOT
    # (BOOTX64.EFI is shim, which starts grubx64.efi beside it), and the grub.cfg the signed GRUB reads
    # from its prefix /EFI/debian, pointing it at /boot/grub on the root file system.
    esp=$work/esp
    mkdir -p "$esp/EFI/debian" "$esp/EFI/BOOT"
    printf '%s\n' "search.fs_uuid $uuid root" "set prefix=(\$root)'/boot/grub'" "configfile \$prefix/grub.cfg" \
        > "$esp/EFI/debian/grub.cfg"
    for dir in debian BOOT; do
        cp "$mnt/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$esp/EFI/$dir/grubx64.efi"
    done
    cp "$mnt/usr/lib/shim/shimx64.efi.signed" "$esp/EFI/debian/shimx64.efi"
    cp "$mnt/usr/lib/shim/shimx64.efi.signed" "$esp/EFI/BOOT/BOOTX64.EFI"
    cp "$esp/EFI/debian/grub.cfg" "$esp/EFI/BOOT/grub.cfg"
    mcopy -s -Q -i "$esp_part" "$esp/EFI" ::/
elif [[ $boot == sdboot ]]; then
    # What kernel-install and the lines above put in the ESP's place goes onto the ESP.
    mcopy -s -Q -i "$esp_part" "$mnt/boot/efi/"* ::/
    umount "$mnt/boot/efi"
fi
cp "$mnt/boot/vmlinuz-$kernel_release" "$work/vmlinuz"
umount "$mnt"
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"; loop=""

qemu-img convert -O qcow2 "$raw" "$image.tmp"
mv "$image.tmp" "$image"
[[ $name != bookworm ]] || mv "$work/vmlinuz" "$images/vmlinuz"
echo "$want" > "$stamp"
echo "image built: $image"
