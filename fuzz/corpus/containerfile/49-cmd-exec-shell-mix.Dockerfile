FROM redis:7
CMD ["redis-server", "--appendonly", "yes"]
CMD redis-server --save 60 1 --loglevel warning
CMD []
