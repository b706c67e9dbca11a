# buzon -- build, test, install.  See README.md.
#
#   make            release build (target/release/buzon)
#   make run        run the server on the embedded default (loopback, ports 2525/2587, ./buzon-data)
#   make test       cargo tests, Python integration tests in tests/, man page lint
#   make check      fmt + clippy + test (what a change must pass)
#   make install    PREFIX=/usr/local DESTDIR= : binary, mailq/sendmail/newaliases links, man pages,
#                   systemd units, examples, /etc/buzon/buzon.conf if absent, /var/lib/buzon with
#                   its sendmail drop box; make uninstall
#   make bench      bench/bench.sh, bench/imap.sh and bench/idle.sh (root; installs postfix and
#                   dovecot-imapd if missing) and bench/checks.py (the sender checks' cost a
#                   message) and bench/web.py (page weight, memory of 100 web sessions);
#                   make bench-imap, make bench-idle, make bench-checks, make bench-web: one part alone;
#                   make bench-compress: IMAP COMPRESS=DEFLATE's octets on the wire and memory
#                   (bench/imap_compress.py, not root)
#   make fuzz       every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (nightly toolchain)

CARGO        ?= cargo
PYTHON       ?= python3
MANDOC       ?= mandoc
PREFIX       ?= /usr/local
DESTDIR      ?=
SBINDIR      ?= $(PREFIX)/sbin
MANDIR       ?= $(PREFIX)/share/man
SYSCONFDIR   ?= /etc
LOCALSTATEDIR ?= /var/lib
SYSTEMDDIR   ?= $(PREFIX)/lib/systemd/system
EXAMPLESDIR  ?= $(PREFIX)/share/doc/buzon/examples
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15

BIN   := target/release/buzon
MAN5  := man/buzon.conf.5
MAN8  := man/buzon.8

.PHONY: all run test check lint-man install uninstall bench bench-imap bench-idle bench-checks bench-web bench-compress fuzz fuzz-smoke clean

all:
	$(CARGO) build --release

run:
	$(CARGO) run --release -- serve

# The integration tests (Rust and Python) start target/release/buzon, so it
# is built first.
test: all
	$(CARGO) test --release
	@if find tests -maxdepth 1 -name 'test_*.py' | grep -q .; then \
		echo "$(PYTHON) -m unittest discover -s tests -p 'test_*.py' -v"; \
		$(PYTHON) -m unittest discover -s tests -p 'test_*.py' -v; \
	else \
		echo "no Python integration tests (tests/test_*.py) yet"; \
	fi
	$(MAKE) lint-man
	$(MAKE) fuzz-smoke

# A short fuzz run of every target when cargo-fuzz and a nightly toolchain are
# there (.ci/run installs cargo-fuzz); `make fuzz` runs them longer.
fuzz-smoke:
	@if $(CARGO) +nightly fuzz --version >/dev/null 2>&1; then \
		$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	else \
		echo "note: cargo-fuzz or the nightly toolchain is missing; fuzz smoke run skipped"; \
	fi

check:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) test

lint-man:
	$(MANDOC) -Tlint -Wwarning man/*.[0-9]

# Every man page in man/ goes to its section; the systemd units get the installed path.
MANPAGES := $(wildcard man/*.[0-9])
UNITS    := etc/systemd/buzon.service etc/systemd/buzon.socket
LINKS    := mailq sendmail newaliases

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/buzon $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(EXAMPLESDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/buzon
	for l in $(LINKS); do ln -sf buzon $(DESTDIR)$(SBINDIR)/$$l; done
	for m in $(MANPAGES); do \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	for u in $(UNITS); do \
		sed 's|/usr/local/sbin/buzon|$(SBINDIR)/buzon|g' $$u >$(DESTDIR)$(SYSTEMDDIR)/$${u##*/}; \
		chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/$${u##*/}; done
	install -m 0644 etc/buzon.conf etc/inetd.conf $(DESTDIR)$(EXAMPLESDIR)/
	@# data_dir (the sample's /var/lib/buzon) with the sendmail drop box, so mail(1), cron and
	@# scripts can submit before the server first starts; the server gives both to its user.
	install -d -m 0711 $(DESTDIR)$(LOCALSTATEDIR)/buzon
	install -d -m 1733 $(DESTDIR)$(LOCALSTATEDIR)/buzon/maildrop
	@if [ -z "$(DESTDIR)" ] && id buzon >/dev/null 2>&1; then \
		chown buzon: $(LOCALSTATEDIR)/buzon $(LOCALSTATEDIR)/buzon/maildrop; fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/buzon/buzon.conf ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/buzon/buzon.conf (sample: $(EXAMPLESDIR)/buzon.conf)"; \
	else \
		echo "install -m 0644 etc/buzon.conf $(DESTDIR)$(SYSCONFDIR)/buzon/buzon.conf"; \
		install -m 0644 etc/buzon.conf $(DESTDIR)$(SYSCONFDIR)/buzon/buzon.conf; \
	fi

# Removes what install put there, except the configuration (it is the administrator's) and mail.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/buzon
	for l in $(LINKS); do \
		if [ -L $(DESTDIR)$(SBINDIR)/$$l ] && [ "$$(readlink $(DESTDIR)$(SBINDIR)/$$l)" = buzon ]; then \
			rm -f $(DESTDIR)$(SBINDIR)/$$l; fi; done
	for m in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	for u in $(UNITS); do rm -f $(DESTDIR)$(SYSTEMDDIR)/$${u##*/}; done
	rm -f $(DESTDIR)$(EXAMPLESDIR)/buzon.conf $(DESTDIR)$(EXAMPLESDIR)/inetd.conf
	-rmdir $(DESTDIR)$(EXAMPLESDIR) 2>/dev/null
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/buzon/ (configuration), $(DESTDIR)$(LOCALSTATEDIR)/buzon and the mail"

bench: all
	bash bench/bench.sh
	bash bench/imap.sh
	bash bench/idle.sh
	$(PYTHON) bench/checks.py
	$(PYTHON) bench/web.py

bench-checks: all
	$(PYTHON) bench/checks.py

bench-web: all
	$(PYTHON) bench/web.py

bench-compress: all
	$(PYTHON) bench/imap_compress.py

bench-imap: all
	bash bench/imap.sh

bench-idle: all
	bash bench/idle.sh

fuzz:
	@test -d fuzz || { echo "no fuzz/ directory: nothing to fuzz"; exit 1; }
	@$(CARGO) +nightly fuzz --version >/dev/null 2>&1 || \
		{ echo "cargo-fuzz is missing: cargo install cargo-fuzz"; exit 1; }
	@set -e; for t in $$($(CARGO) +nightly fuzz list); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		$(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS); \
	done

clean:
	$(CARGO) clean
	rm -rf fuzz/target fuzz/artifacts
