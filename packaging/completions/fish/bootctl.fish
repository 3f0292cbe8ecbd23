# fish completion for /usr/sbin/bootctl, the multi-image bootctl (bootctl(8)).
# Installed as vendor_completions.d/bootctl.fish.
# Generated from the program; do not edit, regenerate:
#     BOOTCTL_UPDATE_COMPLETIONS=1 cargo test -p bootctl --test completions
# complete --path: for /usr/sbin/bootctl and for a bare `bootctl` that PATH resolves to
# it, not for systemd's /usr/bin/bootctl.
complete --keep-order --exclusive --path /usr/sbin/bootctl --arguments "(BOOTCTL_COMPLETE=fish /usr/sbin/bootctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
# This file shadows fish's own bootctl.fish, the completion of systemd's bootctl: where
# PATH finds another bootctl, load that one as well.
set -l bootctl_on_path (command -v bootctl)
if test "$bootctl_on_path" != /usr/sbin/bootctl; and test -f $__fish_data_dir/completions/bootctl.fish
    source $__fish_data_dir/completions/bootctl.fish
end
