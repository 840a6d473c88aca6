#!/usr/bin/env bash
# tests/lib/dockerfile.sh - carries out a Dockerfile's own steps without a container engine, so a
# broken Dockerfile fails a test instead of a user's `docker build`.
#
# Each stage starts from a fresh Debian 12 root made from a minbase tarball (mmdebstrap, shaped
# like the debian:12-slim image: no manuals, documentation or locales); RUN lines execute in a
# chroot inside private mount and PID namespaces (with /dev, /proc, /sys and the host's
# resolv.conf, as a build container has them); COPY takes files from the build context (minus
# .dockerignore) or from an earlier stage. The instructions are read from the Dockerfile itself:
# nothing here repeats its steps. An instruction this file does not know fails the run with a
# sentence saying so, rather than being skipped.
#
# Source it, then:
#   df_build DOCKERFILE CONTEXT DIR
#                                 build every stage into DIR/stage<N>/ (a root file system);
#                                 DIR/stage<N>.meta then holds the stage's USER, WORKDIR,
#                                 ENTRYPOINT, CMD, EXPOSE and ENV as shell assignments, and
#                                 DIR/last-stage the number of the last stage (the image)
#   df_chroot ROOT USER CMD...    run CMD in ROOT as USER ("" for root), as a container would
#
# Environment: MCPGW_IMAGE_CACHE (folder for the base tarball; default ~/.cache/mcpgw-image);
# MCPGW_IMAGE_FRESH=1 makes a new base tarball even if the cached one is younger than a week.
# Needs root, mmdebstrap and jq, and a route to Debian's mirror.

DF_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DF_CACHE=${MCPGW_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-image}

df_die() {
    echo "dockerfile: $*" >&2
    exit 1
}

# df_base_tarball FILE: FILE becomes (a link to) the Debian 12 base root: minbase with the slim
# image's dpkg exclusions. Cached for a week (a fresh machine, as CI's, makes one: 3-13 min on 2
# busy cores); MCPGW_IMAGE_FRESH=1 always makes a new one.
df_base_tarball() {
    local out=$1 key cached
    local -a opts=(--variant=minbase --dpkgopt=force-unsafe-io
        "--dpkgopt=path-exclude=/usr/share/doc/*" "--dpkgopt=path-include=/usr/share/doc/*/copyright"
        "--dpkgopt=path-exclude=/usr/share/man/*" "--dpkgopt=path-exclude=/usr/share/info/*"
        "--dpkgopt=path-exclude=/usr/share/locale/*" "--dpkgopt=path-exclude=/usr/share/groff/*"
        "--dpkgopt=path-exclude=/usr/share/lintian/*" '--aptopt=Acquire::Languages "none"')
    command -v mmdebstrap >/dev/null || df_die "mmdebstrap is not installed (deploy/deps.sh installs it)"
    key=$(printf '%s\n' "${opts[@]}" | md5sum | cut -c1-12)
    cached="$DF_CACHE/bookworm-slim-$key.tar"
    mkdir -p "$DF_CACHE"
    (
        flock 9
        if [ "${MCPGW_IMAGE_FRESH:-0}" = 1 ] ||
            [ -z "$(find "$cached" -mtime -7 2>/dev/null)" ]; then
            echo "dockerfile: making a Debian 12 base root with mmdebstrap" >&2
            rm -rf "$cached.tmp"
            if ! mmdebstrap --format=tar "${opts[@]}" bookworm "$cached.tmp" >"$cached.log" 2>&1; then
                tail -n 20 "$cached.log" >&2
                df_die "mmdebstrap could not make the Debian 12 base root (log above)"
            fi
            mv "$cached.tmp" "$cached"
        fi
    ) 9>"$DF_CACHE/.lock" || exit 1
    ln -sf "$cached" "$out"
}

# df_parse DOCKERFILE: its instructions, one per line: LINE<TAB>KEYWORD<TAB>ARGUMENTS, continued
# lines joined as the engine joins them (backslash and newline removed), comments dropped.
df_parse() {
    awk '
        { sub(/\r$/, "") }
        /^[ \t]*#/ || /^[ \t]*$/ { next }
        {
            if (!cont) { start = NR; buf = "" }
            line = $0
            if (line ~ /\\[ \t]*$/) { sub(/\\[ \t]*$/, "", line); buf = buf line; cont = 1; next }
            buf = buf line; cont = 0
            sub(/^[ \t]+/, "", buf)
            kw = buf; sub(/[ \t].*$/, "", kw)
            rest = substr(buf, length(kw) + 1); sub(/^[ \t]+/, "", rest); sub(/[ \t]+$/, "", rest)
            printf "%d\t%s\t%s\n", start, toupper(kw), rest
        }
        END { if (cont) { print "the last instruction ends with a backslash" > "/dev/stderr"; exit 1 } }
    ' "$1"
}

# uid:gid:home of USER (name or uid, optionally :group) in ROOT's passwd; empty USER is root.
_df_user() {
    local root=$1 spec=${2:-root} u g="" line
    u=${spec%%:*}
    [[ $spec != *:* ]] || g=${spec#*:}
    line=$(awk -F: -v u="$u" '$1 == u || $3 == u { print $3 ":" $4 ":" $6; exit }' "$root/etc/passwd")
    if [ -z "$line" ]; then
        [[ $u =~ ^[0-9]+$ ]] || df_die "USER $spec: no such user in the image"
        line="$u:0:/"
    fi
    if [ -n "$g" ]; then
        [[ $g =~ ^[0-9]+$ ]] || g=$(awk -F: -v g="$g" '$1 == g { print $3; exit }' "$root/etc/group")
        [ -n "$g" ] || df_die "USER $spec: no such group in the image"
        line="${line%%:*}:$g:${line##*:}"
    fi
    echo "$line"
}

# df_chroot ROOT USER CMD...: CMD in ROOT as a container's process runs: as USER (looked up in
# the image), with only PATH, HOME, HOSTNAME and the NAME=VALUE words of DF_ENV in its
# environment, in DF_WORKDIR (default /), in private mount and PID namespaces (whatever it leaves
# running dies with it), with /dev, /proc, /sys and the host's resolv.conf mounted.
df_chroot() {
    local root=$1 user=$2 ids uid gid home
    shift 2
    ids=$(_df_user "$root" "$user") || exit 1
    IFS=: read -r uid gid home <<<"$ids"
    [ -e "$root/etc/resolv.conf" ] || : >"$root/etc/resolv.conf"
    # shellcheck disable=SC2086 # DF_ENV is a list of NAME=VALUE words
    unshare --mount --pid --fork --kill-child -- /bin/sh -c '
        root=$1 uid=$2 gid=$3 wd=$4
        shift 4
        mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" &&
            mount -t sysfs -o ro sysfs "$root/sys" &&
            mount --bind -o ro /etc/resolv.conf "$root/etc/resolv.conf" || exit 125
        exec chroot --userspec="$uid:$gid" --groups="$gid" "$root" \
            /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$wd" "$@"
    ' df-chroot "$root" "$uid" "$gid" "${DF_WORKDIR:-/}" \
        /usr/bin/env -i PATH="$DF_PATH" HOME="${home:-/}" HOSTNAME=mcpgw-image ${DF_ENV:-} "$@"
}

# ARGV becomes a JSON array's strings (exec form), or /bin/sh -c STRING (shell form).
_df_argv() {
    if [ "${1:0:1}" = "[" ]; then
        jq -e 'type == "array" and length > 0 and all(.[]; type == "string")' <<<"$1" >/dev/null 2>&1 ||
            df_die "not a JSON array of strings: $1"
        mapfile -d '' -t ARGV < <(jq -j '.[] | (. + "\u0000")' <<<"$1")
    else
        ARGV=(/bin/sh -c "$1")
    fi
}

# _df_copy ROOT FROM CHOWN WORKDIR SRC... DEST: COPY with the engine's rules: sources relative to
# the context (FROM empty) or absolute in the stage root FROM, wildcards allowed; a directory's
# contents are copied, not the directory; DEST is a directory when it ends in / or there are
# several sources; everything copied is owned by root, or by CHOWN.
_df_copy() {
    local root=$1 from=$2 chown=$3 wd=$4
    shift 4
    [ "$#" -ge 2 ] || df_die "COPY needs a source and a destination"
    local dest=${!#} s m target dir_dest=0
    local -a srcs=("${@:1:$(($# - 1))}") matches
    [ "${dest:0:1}" = / ] || dest="${wd%/}/$dest"
    if [ "${dest: -1}" = / ] || [ "${#srcs[@]}" -gt 1 ]; then dir_dest=1; fi
    for s in "${srcs[@]}"; do
        if [ -n "$from" ]; then s="$from/${s#/}"; else s="$DF_CONTEXT/$s"; fi
        mapfile -t matches < <(compgen -G "$s" || true)
        [ "${#matches[@]}" -gt 0 ] || df_die "COPY: ${s#"${from:-$DF_CONTEXT}"} does not exist"
        [ "${#matches[@]}" -eq 1 ] || dir_dest=1
        for m in "${matches[@]}"; do
            if [ -d "$m" ]; then
                target=$dest
                mkdir -p "$root$target"
                tar -C "$m" --owner=0 --group=0 -cf - . | tar -C "$root$target" -xpf - ||
                    df_die "COPY of $m failed"
            else
                target=$dest
                if [ "$dir_dest" = 1 ] || [ -d "$root$dest" ]; then target="${dest%/}/${m##*/}"; fi
                mkdir -p "$root${target%/*}"
                cp -p "$m" "$root$target" && chown 0:0 "$root$target" || df_die "COPY of $m failed"
            fi
            if [ -n "$chown" ]; then
                DF_ENV="" DF_WORKDIR=/ df_chroot "$root" "" chown -R "$chown" "$target" ||
                    df_die "COPY --chown=$chown failed"
            fi
        done
    done
}

# _df_context CONTEXT OUT: the build context as the engine sends it, without what .dockerignore
# names (patterns relative to the context; exceptions with ! are not supported and fail).
_df_context() {
    local ctx=$1 out=$2 p
    local -a excl=()
    if [ -f "$ctx/.dockerignore" ]; then
        while IFS= read -r p || [ -n "$p" ]; do
            p=${p%%#*}
            p=${p%"${p##*[![:space:]]}"}
            p=${p#"${p%%[![:space:]]*}"}
            [ -n "$p" ] || continue
            [ "${p:0:1}" != "!" ] || df_die ".dockerignore: exceptions ($p) are not supported here"
            p=${p#/}
            excl+=("--exclude=./${p%/}")
        done <"$ctx/.dockerignore"
    fi
    rm -rf "$out"
    mkdir -p "$out"
    tar -C "$ctx" --anchored --wildcards "${excl[@]}" -cf - . | tar -C "$out" -xf - ||
        df_die "cannot copy the build context $ctx"
}

# What a stage leaves for running its image (df_build's state): USER, WORKDIR, ENTRYPOINT...
_df_meta() {
    printf 'DF_USER=%q\nDF_WORKDIR=%q\nDF_ENTRYPOINT=%q\nDF_CMD=%q\nDF_EXPOSE=%q\nDF_ENV=%q\n' \
        "$user" "$wd" "$entry" "$cmd" "${expose# }" "${envs# }" >"$1"
}

# df_build DOCKERFILE CONTEXT DIR: every stage in order, each into DIR/stage<N>. Exits with a
# sentence naming the Dockerfile's line when a step fails or is not understood.
df_build() {
    local dockerfile=$1 ctx=$2 dir=$3
    local line kw args s=-1 root="" user="" wd=/ entry="" cmd="" expose="" envs="" from chown a
    local -A stage_of=()
    local -a words ARGV
    [ -f "$dockerfile" ] || df_die "no Dockerfile at $dockerfile"
    mkdir -p "$dir"
    df_parse "$dockerfile" >"$dir/instructions" || df_die "cannot parse $dockerfile"
    df_base_tarball "$dir/base.tar"
    DF_CONTEXT="$dir/context"
    _df_context "$ctx" "$DF_CONTEXT"
    while IFS=$'\t' read -r line kw args; do
        [ "$kw" = FROM ] || [ "$s" -ge 0 ] || df_die "line $line: $kw before the first FROM"
        echo "=== line $line: $kw ${args:0:120}" >&2
        case "$kw" in
        FROM)
            [ "$s" -lt 0 ] || _df_meta "$dir/stage$s.meta"
            read -ra words <<<"$args"
            case "${words[0]}" in
            debian:12 | debian:12-slim | debian:bookworm | debian:bookworm-slim) ;;
            *) df_die "line $line: FROM ${words[0]}: only Debian 12 (debian:12, debian:12-slim) can be reproduced here" ;;
            esac
            s=$((s + 1))
            if [ "${#words[@]}" -eq 3 ] && [ "${words[1],,}" = as ]; then
                stage_of[${words[2]}]=$s
            elif [ "${#words[@]}" -ne 1 ]; then
                df_die "line $line: FROM $args: expected IMAGE [AS NAME]"
            fi
            stage_of[$s]=$s
            root="$dir/stage$s"
            rm -rf "$root"
            mkdir -p "$root"
            tar -C "$root" -xpf "$dir/base.tar" || df_die "cannot unpack the base root"
            user="" wd=/ entry="" cmd="" expose="" envs=""
            ;;
        RUN)
            [[ $args != --* ]] || df_die "line $line: RUN ${args%% *}: options are not supported here"
            _df_argv "$args"
            DF_ENV="$envs" DF_WORKDIR="$wd" df_chroot "$root" "$user" "${ARGV[@]}" </dev/null ||
                df_die "line $line: RUN failed (exit $?): ${args:0:300}"
            ;;
        COPY)
            from="" chown=""
            read -ra words <<<"$args"
            while [[ ${words[0]} == --* ]]; do
                a=${words[0]}
                words=("${words[@]:1}")
                case "$a" in
                --from=*)
                    [ -n "${stage_of[${a#--from=}]:-}" ] ||
                        df_die "line $line: COPY $a: no earlier stage of that name"
                    from="$dir/stage${stage_of[${a#--from=}]}"
                    ;;
                --chown=*) chown=${a#--chown=} ;;
                *) df_die "line $line: COPY $a is not supported here" ;;
                esac
            done
            [ "${words[0]:0:1}" != "[" ] || df_die "line $line: COPY in JSON form is not supported here"
            _df_copy "$root" "$from" "$chown" "$wd" "${words[@]}"
            ;;
        WORKDIR)
            if [ "${args:0:1}" = / ]; then wd=$args; else wd="${wd%/}/$args"; fi
            mkdir -p "$root$wd"
            ;;
        USER)
            _df_user "$root" "$args" >/dev/null
            user=$args
            ;;
        ENV)
            read -ra words <<<"$args"
            for a in "${words[@]}"; do
                [[ $a =~ ^[A-Za-z_][A-Za-z0-9_]*=[^\"\'\$\\]*$ ]] ||
                    df_die "line $line: ENV $args: only NAME=VALUE words without quotes or \$ are supported here"
                envs+=" $a"
            done
            ;;
        ENTRYPOINT) entry=$args ;;
        CMD) cmd=$args ;;
        EXPOSE) expose+=" $args" ;;
        LABEL) ;;
        *) df_die "line $line: $kw is not supported by tests/lib/dockerfile.sh: teach it what $kw means" ;;
        esac
    done <"$dir/instructions"
    [ "$s" -ge 0 ] || df_die "$dockerfile has no FROM"
    _df_meta "$dir/stage$s.meta"
    echo "$s" >"$dir/last-stage"
}
