# fish completion for deployer(8).
# Installed as vendor_completions.d/deployer.fish.
# Generated from the program; do not edit, regenerate:
#     DEPLOYER_UPDATE_COMPLETIONS=1 cargo test -p deployer --test completions
complete --keep-order --exclusive --command deployer --arguments "(DEPLOYER_COMPLETE=fish /usr/sbin/deployer -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
