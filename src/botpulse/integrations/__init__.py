"""Framework hooks: one module per chat framework, each behind its extra.

- :mod:`botpulse.integrations.discord` (``pip install 'botpulse[discord]'``)
- :mod:`botpulse.integrations.telegram` (``pip install 'botpulse[telegram]'``)
- :mod:`botpulse.integrations.aiogram` (``pip install 'botpulse[aiogram]'``)
- :mod:`botpulse.integrations.irc` (``pip install 'botpulse[irc]'``; the decorator
  for hand-written bots needs nothing)

Each module imports only its framework and botpulse's public core; nothing here is
imported by ``import botpulse``. :class:`~botpulse.integrations.admin.AdminCommands`
configures the opt-in ``performance`` and ``health`` chat commands.
"""
