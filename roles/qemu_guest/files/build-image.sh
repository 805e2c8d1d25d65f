#!/usr/bin/env bash
# Build the Debian bookworm test-host image once and cache it.
#
# The image is a 6 GiB sparse MBR disk with one ext4 partition, GRUB on the
# disk (so reboots go through a real bootloader), a serial console, sshd with
# the project's test key for root, python3, kexec-tools (only for the
# benchmark that compares against it; the collection never calls it) and
# makedumpfile. Its initrd holds only the disk's modules (host-only, 7 MB), and a copy of it
# serves capture kernels (/boot/initrd.img-RELEASE-capture).
# Not kdump-tools: its kernel hook cannot build its initrd inside mmdebstrap; the kdump role
# installs it on the guest, as it would on any host.
#
# Output: $KEXEC_CACHE/images/bookworm.qcow2 (default ~/.cache/kernel-kexec), and a copy
# of the guest's kernel as $KEXEC_CACHE/images/vmlinuz (the unit tests parse a real bzImage).
# The cache is keyed on this script's content: edit it and the image is rebuilt.
# Needs root (mmdebstrap, losetup, mount, chroot).
set -euo pipefail

cache=${KEXEC_CACHE:-$HOME/.cache/kernel-kexec}
images=$cache/images
image=$images/bookworm.qcow2
stamp=$images/bookworm.stamp
key=$cache/ssh/id_ed25519
want=$(sha256sum "$0" | cut -d' ' -f1)
mirror=${KEXEC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -f $image && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "image up to date: $image"
    exit 0
fi
[[ $(id -u) == 0 ]] || { echo "build-image.sh needs root (mmdebstrap, losetup, mount)" >&2; exit 1; }

mkdir -p "$images" "$(dirname "$key")"
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kernel-kexec-test -f "$key"

work=$(mktemp -d "$images/build.XXXXXX")
loop=""
mnt=$work/mnt
cleanup() {
    set +e
    for m in dev/pts dev proc sys ""; do
        mountpoint -q "$mnt/$m" && umount -R "$mnt/$m"
    done
    [[ -n $loop ]] && { partx -d "$loop" 2>/dev/null; losetup -d "$loop"; }
    rm -rf "$work"
}
trap cleanup EXIT

packages=linux-image-amd64,systemd-sysv,udev,openssh-server,python3,dbus,grub-pc,initramfs-tools,ifupdown,isc-dhcp-client,iproute2,kexec-tools,makedumpfile,python3-apt,procps,less
echo "mmdebstrap: bookworm minbase"
# Keep the package lists: the guests install packages (the kdump role's kdump-tools) without an apt update.
mmdebstrap --variant=minbase --skip=cleanup/apt/lists --include="$packages" bookworm "$work/rootfs.tar" "$mirror"

raw=$work/disk.raw
truncate -s 6G "$raw"
echo 'type=83, bootable' | sfdisk -q "$raw"
loop=$(losetup -f --show -P "$raw")
part=${loop}p1
# devtmpfs makes the partition node, sometimes late; with no udev at all make it by hand.
for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -b $part ]] && break; partx -a "$loop" 2>/dev/null || true; sleep 0.5; done
if [[ ! -b $part ]]; then
    IFS=: read -r major minor < "/sys/block/$(basename "$loop")/$(basename "$part")/dev"
    mknod "$part" b "$major" "$minor"
fi
mkfs.ext4 -q -L kexec-root "$part"
uuid=$(blkid -s UUID -o value "$part")
mkdir -p "$mnt"
mount "$part" "$mnt"
tar -C "$mnt" --xattrs --xattrs-include='*' -xpf "$work/rootfs.tar"

cat > "$mnt/etc/fstab" <<FSTAB
UUID=$uuid / ext4 errors=remount-ro 0 1
FSTAB
echo kexec-guest > "$mnt/etc/hostname"
# kexec-tools must not load a kernel at shutdown behind the tests' back.
sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$mnt/etc/default/kexec"
# Packages the tests install (the kdump role's kdump-tools) must not rebuild the main initrd through
# initramfs-tools' trigger: under TCG that alone takes minutes. kdump-tools builds its own initrd anyway.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$mnt/etc/initramfs-tools/update-initramfs.conf"
# eth0 is allow-hotplug, as Debian's installer writes it: udev brings it up when the NIC appears.
# "auto eth0" made ifupdown-pre.service wait for every udev event to settle before networking and
# sshd, 10-40 s of each boot under TCG, the same for every reboot method and the largest variance in it.
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

mount --rbind /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount -t sysfs sys "$mnt/sys"
chroot "$mnt" grub-install --target=i386-pc --boot-directory=/boot "$loop"
chroot "$mnt" update-grub
# The boot initrd holds only what this disk needs (MODULES=list), as a host-only initrd does (dracut's
# default on Fedora and RHEL): Debian's MODULES=most initrd is 36 MB, and the kernel took 10 s of every
# boot under TCG to unpack it (GRUB and every load read it too); this one is 7 MB. mkinitramfs, not
# update-initramfs, which update_initramfs=no above turns off.
release=$(ls "$mnt/lib/modules")
sed -i 's/^MODULES=.*/MODULES=list/' "$mnt/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >> "$mnt/etc/initramfs-tools/modules"
chroot "$mnt" mkinitramfs -o "/boot/initrd.img-$release" "$release"
# A capture kernel's initrd of the same kind, as kdump-tools builds one (the stock one did not fit
# 256 MiB of crash memory); the tests load it under this name.
cp "$mnt/boot/initrd.img-$release" "$mnt/boot/initrd.img-$release-capture"
# Without udev in the chroot grub-mkconfig names the loop device: boot by UUID.
sed -i "s|root=$part|root=UUID=$uuid|g" "$mnt/boot/grub/grub.cfg"
grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg"
umount -R "$mnt/dev" "$mnt/proc" "$mnt/sys"
cp "$mnt/boot/vmlinuz-$release" "$work/vmlinuz"
umount "$mnt"
partx -d "$loop" 2>/dev/null || true
losetup -d "$loop"; loop=""

qemu-img convert -O qcow2 "$raw" "$image.tmp"
mv "$image.tmp" "$image"
mv "$work/vmlinuz" "$images/vmlinuz"
echo "$want" > "$stamp"
echo "image built: $image"
