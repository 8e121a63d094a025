# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
COPY setup.ps1 C:\setup\
RUN New-Item -ItemType Directory C:\app ; `
    Set-Location C:\app ; `
    C:\setup\setup.ps1
WORKDIR C:\app
CMD ["powershell"]
