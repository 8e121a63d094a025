FROM centos:7
ENV JAVA_HOME /usr/lib/jvm/java-11
ENV PATH $JAVA_HOME/bin:$PATH
ENV GREETING hello from the legacy   form
ENV A=1 B=2
