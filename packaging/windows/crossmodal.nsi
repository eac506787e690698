; The Windows installer (makensis; scripts/package.sh windows defines VERSION, STAGE and OUTFILE).
; Installs crossmodal.exe and the MinGW runtime DLLs it needs into Program Files, a Start menu
; shortcut, and an uninstaller listed in Settings → Apps. Models are not inside: the model store
; fetches them on first run, into the user's own folder.
; A 64-bit installer: crossmodal is a 64-bit program, and a 64-bit Windows runs it natively.
Target amd64-unicode
!include "MUI2.nsh"

Name "crossmodal ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\crossmodal"
InstallDirRegKey HKLM "Software\crossmodal" "InstallDir"
RequestExecutionLevel admin
SetCompressor /SOLID lzma

!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\crossmodal"
!define MUI_ICON "${STAGE}\crossmodal.ico"
!define MUI_UNICON "${STAGE}\crossmodal.ico"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "crossmodal"
  SetRegView 64
  SetOutPath "$INSTDIR"
  File "${STAGE}\*.exe"
  File "${STAGE}\*.dll"
  File "${STAGE}\crossmodal.ico"
  File "${STAGE}\README.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortCut "$SMPROGRAMS\crossmodal.lnk" "$INSTDIR\crossmodal.exe" "" "$INSTDIR\crossmodal.ico"
  WriteRegStr HKLM "Software\crossmodal" "InstallDir" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "crossmodal"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\crossmodal.ico"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetRegView 64
  Delete "$INSTDIR\*.exe"
  Delete "$INSTDIR\*.dll"
  Delete "$INSTDIR\crossmodal.ico"
  Delete "$INSTDIR\README.txt"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\crossmodal.lnk"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  DeleteRegKey HKLM "Software\crossmodal"
SectionEnd
