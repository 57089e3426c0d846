"""The model where its reader is: a static page and a JavaScript module that generate with no server
(`charrnn export RUN --web DIR`)."""
