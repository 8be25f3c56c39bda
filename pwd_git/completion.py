"""Shell completion that hooks into git's own: git's bash completion calls `_git_pwd` and zsh's
calls `_git-pwd` to complete `git pwd ...`; both ask the tool, which answers from its click
command tree (click's completion protocol, under the fixed variable COMPLETE_VAR: click would
derive `_GIT PWD_COMPLETE`, with a space, from the program name `git pwd`)."""

from __future__ import annotations

#: The environment variable that puts `git-pwd` into click's completion mode.
COMPLETE_VAR = "_PWD_GIT_COMPLETE"

BASH = r"""# Bash completion for `git pwd`, `git-pwd` and `pwd-git` (from pwd_git/completion.py; do not edit).
# git's completion calls _git_pwd to complete `git pwd ...`. Installed as
# share/bash-completion/completions/git-pwd it loads on demand; or: eval "$(git pwd completion bash)".

_pwd_git_reply() {
    # _pwd_git_reply PROGRAM SUFFIX CWORD WORD...: COMPREPLY as the tool's command tree answers
    local program=$1 suffix=$2 cword=$3 IFS=$'\n' response line type value
    shift 3
    response=$(env COMP_WORDS="$*" COMP_CWORD="$cword" _PWD_GIT_COMPLETE=bash_complete "$program" 2>/dev/null) || return 0
    COMPREPLY=()
    for line in $response; do
        IFS=',' read -r type value <<< "$line"
        case $type in
            dir) COMPREPLY=(); compopt -o dirnames 2>/dev/null; return 0 ;;
            file) COMPREPLY=(); compopt -o default 2>/dev/null; return 0 ;;
            plain) COMPREPLY+=("$value$suffix") ;;
        esac
    done
}

_git_pwd() {
    # git's completion sets words, cword and __git_cmd_idx (the index of `pwd` in words)
    local i=${__git_cmd_idx:-}
    if [[ -z $i ]]; then
        for ((i = 1; i < cword; i++)); do [[ ${words[i]} == pwd ]] && break; done
    fi
    _pwd_git_reply git-pwd " " "$((cword - i))" "${words[@]:i}"
}

_pwd_git() {
    _pwd_git_reply "${COMP_WORDS[0]}" "" "$COMP_CWORD" "${COMP_WORDS[@]}"
}

complete -o nosort -o default -F _pwd_git git-pwd pwd-git
"""

ZSH = r"""#compdef git-pwd pwd-git
# Zsh completion for `git pwd`, `git-pwd` and `pwd-git` (from pwd_git/completion.py; do not edit).
# zsh's git completion calls _git-pwd to complete `git pwd ...`. Installed as _git-pwd in a folder
# on $fpath it is autoloaded; or, after compinit: eval "$(git pwd completion zsh)".

_git-pwd() {
    local -a response plain described
    local type key descr
    response=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT - 1)) \
        _PWD_GIT_COMPLETE=zsh_complete git-pwd 2>/dev/null)}")
    for type key descr in "${response[@]}"; do
        case $type in
            plain) if [[ $descr == _ ]]; then plain+=("$key"); else described+=("$key:$descr"); fi ;;
            dir) _path_files -/ ;;
            file) _path_files -f ;;
        esac
    done
    (( ${#described} )) && _describe -V unsorted described -U
    (( ${#plain} )) && compadd -U -V unsorted -a plain
    return 0
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _git-pwd "$@"
else
    (( $+functions[compdef] )) && compdef _git-pwd git-pwd pwd-git
fi
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}

#: Where the wheel installs each script (pyproject.toml shared-data), relative to the repository root.
INSTALLED = {"bash": "share/bash-completion/completions/git-pwd", "zsh": "share/zsh/site-functions/_git-pwd"}
