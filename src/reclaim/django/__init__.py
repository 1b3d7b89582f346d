"""reclaim for Django: ``INSTALLED_APPS += ["reclaim.django"]`` (``pip install 'reclaim[django]'``).

- :func:`reclaim.django.conf.reclaim_config`: the :class:`~reclaim.Config` built
  from ``settings.DATABASES``, ``settings.STORAGES``, the models' file fields and
  ``settings.RECLAIM`` (see :mod:`reclaim.django.conf`);
- ``manage.py reclaim <command>``: the CLI with that configuration;
- :func:`reclaim.django.tasks.run_cycle`: the Celery task;
- :mod:`reclaim.django.urls`: the admin pages (overview, quarantine, row archive, restore);
- :func:`reclaim.django.writers.ensure`: for a model's save path.

Nothing is imported here, so that Django can import the app before its
registry is ready; import the submodules.
"""
