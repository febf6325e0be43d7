# spotscribe: `make smoke` (the pre-deploy check on the local target) and `make test` (everything).
# Both run scripts/setup.sh first, which installs what is missing and is quick when nothing is.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
REPORTS := reports
XDIST   ?= -n 2 --dist loadfile

.PHONY: setup smoke test status bench clean-reports

setup:
	bash scripts/setup.sh

smoke: setup
	$(PYTEST) -m smoke $(XDIST); rc=$$?; $(PY) -m fleet status; exit $$rc

test: setup
	mkdir -p $(REPORTS)
	$(PYTEST) $(XDIST) --alluredir=$(REPORTS)/allure-results --junitxml=$(REPORTS)/junit.xml; rc=$$?; \
	  $(PY) -m fleet status; exit $$rc

status:
	$(PY) -m fleet status

clean-reports:
	rm -rf $(REPORTS)/allure-results $(REPORTS)/junit.xml logs
