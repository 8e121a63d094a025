FROM alpine   
RUN echo one \   
    two	
ENV A=1   
WORKDIR /app  	
CMD ["sh"]   
