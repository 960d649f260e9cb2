"""The studio: a local web app to browse runs, draw samples and run human studies (gan/studio/app.py).

  python -m gan.studio --runs runs/
"""
